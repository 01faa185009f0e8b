"""A recording fake of the Slack Web API, served over HTTP, that refuses what Slack refuses.

The test suite talks to it through slack_sdk's real client, and the local sandbox page shows its
state. Errors follow Slack's wire format: HTTP 200 with ``{"ok": false, "error": ...}``, except
rate limits (429 + ``Retry-After``) and server errors (5xx), which only come from ``fail_next``.
Block Kit is checked against Slack's published limits (``block_errors``, ``view_errors``), then
against slack_sdk's own models as a second net.

One app, installed in one or more teams: what a token may reach and how dead tokens are refused
(``invalid_auth``, ``token_revoked``, ``token_expired``, ``account_inactive``,
``not_allowed_token_type``) is in ``fake_teams``; each call is recorded with the team whose token
made it. OAuth (the consent page, ``oauth.v2.access``, rotation, uninstall) is in ``fake_oauth``,
Socket Mode (``apps.connections.open`` and its websocket) in ``fake_socket``, ``response_url`` in
``fake_responses``; each module says what it refuses as Slack would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from trame_bot.sandbox.fake_oauth import FakeOAuth
from trame_bot.sandbox.fake_records import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    BOT_USER_NAME,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    Call,
    Ephemeral,
    IssuedToken,
    Json,
    Message,
    Response,
    Revision,
    StoredFile,
    Team,
    User,
    View,
)
from trame_bot.sandbox.fake_responses import RESPONSE_URL_USES, ResponseTarget, ResponseUrls
from trame_bot.sandbox.fake_socket import Delivery, Envelope, EnvelopeKind, SocketAck, SocketHub
from trame_bot.sandbox.fake_teams import Directory
from trame_bot.sandbox.fake_wire import (
    Args,
    Fault,
    Hang,
    Refused,
    answer,
    fault_answer,
    read_args,
    take,
)

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "BOT_USER_NAME",
    "RESPONSE_URL_USES",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "TEAM_NAME",
    "Call",
    "Delivery",
    "Envelope",
    "EnvelopeKind",
    "Ephemeral",
    "FakeSlack",
    "IssuedToken",
    "Json",
    "Message",
    "Response",
    "Revision",
    "RunningFake",
    "SocketAck",
    "StoredFile",
    "Team",
    "User",
    "View",
    "serve",
]

_SECRET_ARGS = frozenset({"client_secret", "refresh_token"})
_Method = Callable[[Args, Team, IssuedToken], Json]
_AppMethod = Callable[[Args, web.Request, str | None], Json]


class FakeSlack(ResponseUrls):
    """Slack's Web API for one app installed in one or more teams, with everything it was asked
    kept. ``token`` is the bot token of the first team (``TEAM_ID``); ``client_id`` and
    ``client_secret`` are the app's OAuth credentials, ``app_token`` its app-level token for
    Socket Mode (each also settable later with ``configure_app``).

    State for tests and the sandbox page: ``calls``, ``messages(channel)``, ``ephemerals``,
    ``views`` (every view by id), ``home_views`` (by user), ``files``, ``responses``,
    ``teams``, and for Socket Mode ``socket_envelopes``, ``socket_deliveries``, ``socket_acks``.
    """

    def __init__(
        self,
        token: str,
        *,
        clock: Callable[[], float] = time.time,
        client_id: str | None = None,
        client_secret: str | None = None,
        app_token: str | None = None,
        token_rotation: bool = False,
        redirect_uri: str | None = None,
        app_name: str = BOT_USER_NAME,
    ) -> None:
        self.token = token
        self.directory = Directory(token, clock)
        self.oauth = FakeOAuth(
            self.directory,
            clock,
            client_id=client_id,
            client_secret=client_secret,
            app_name=app_name,
        )
        self.socket = SocketHub(clock)
        self.configure_app(
            app_token=app_token, token_rotation=token_rotation, redirect_uri=redirect_uri
        )
        self.calls: list[Call] = []
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, View] = {}
        self.home_views: dict[str, View] = {}
        self.files: dict[str, StoredFile] = {}
        self.responses: list[Response] = []
        self.users: dict[str, User] = self.directory.users
        self.teams: dict[str, Team] = self.directory.teams
        self._clock = clock
        self._channels: dict[str, list[Message]] = {}
        self._faults: list[Fault] = []
        self._hangs: list[Hang] = []
        self._response_targets: dict[str, ResponseTarget] = {}
        self._response_uses: dict[str, int] = {}
        self._serial = itertools.count(1)
        self._last_ts_micros = 0
        self._released = asyncio.Event()
        self._methods: dict[str, _Method] = {
            "auth.test": self._auth_test,
            "auth.revoke": self._auth_revoke,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "conversations.open": self._conversations_open,
            "users.info": self._users_info,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }
        # Methods that take no bot token: the app's credentials, or its app-level token.
        self._app_methods: dict[str, _AppMethod] = {
            "oauth.v2.access": self._oauth_v2_access,
            "apps.connections.open": self._apps_connections_open,
        }

    # -- reading state

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def messages(self, channel: str) -> list[Message]:
        """The channel's messages and thread replies, oldest first."""
        return list(self._channels.get(channel, []))

    def channels(self) -> list[str]:
        return sorted(self._channels)

    def user(self, user_id: str) -> User | None:
        """A known user, or one of the first team made up for any well-formed user id."""
        return self.directory.user(user_id)

    def team_of_channel(self, channel: str) -> str | None:
        """The team that owns ``channel`` (the first team for an unregistered id)."""
        return self.directory.owner(channel)

    # -- arranging state

    def add_team(
        self,
        team_id: str,
        name: str,
        *,
        domain: str | None = None,
        bot_user_id: str | None = None,
        bot_id: str | None = None,
    ) -> Team:
        """Another Slack team (workspace); the app is not installed there until ``install`` or
        the OAuth flow. An existing team is renamed."""
        return self.directory.add_team(
            team_id, name, domain=domain, bot_user_id=bot_user_id, bot_id=bot_id
        )

    def add_channel(self, channel: str, *, team: str = TEAM_ID) -> None:
        """Register ``channel`` to ``team``: other teams' tokens get ``channel_not_found``."""
        self.directory.add_channel(channel, team)

    def share_channel(self, channel: str, team_a: str, team_b: str) -> None:
        """A Slack Connect channel: either team's token may post and update there."""
        self.directory.share_channel(channel, team_a, team_b)

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        tz: str = "Europe/Paris",
        is_bot: bool = False,
        team: str = TEAM_ID,
    ) -> User:
        self.directory.team(team)
        user = User(
            user_id, name or user_id.lower(), real_name or f"User {user_id}", tz, is_bot, team
        )
        self.users[user_id] = user
        return user

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str,
        blocks: list[Json] | None = None,
        thread_ts: str | None = None,
    ) -> Message:
        """A message someone else wrote (the bot cannot update it)."""
        author = self.directory.user(user)
        message = Message(
            channel,
            self._next_ts(),
            text,
            blocks or [],
            user,
            thread_ts,
            team=author.team_id if author else TEAM_ID,
        )
        return self._post(message)

    def install(self, team: str, *, installer: str | None = None) -> str:
        """A new bot token for ``team``, as an install would give, without the OAuth pages."""
        self.directory.team(team).installer = installer
        return self.directory.issue(team, "bot").value

    def remember_token(self, team: str, token: str) -> None:
        """A bot token ``team`` was given before this fake (which keeps nothing) restarted."""
        self.directory.team(team)
        self.directory._register(token, "bot", team)

    def deactivate_team(self, team: str) -> None:
        """The workspace is deactivated: its tokens answer ``account_inactive``."""
        self.directory.team(team).active = False

    def expire_tokens(self, team: str) -> None:
        """Every bot token of ``team`` expires now (``token_expired``); refresh tokens stay."""
        self.directory.expire(team)

    def configure_app(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        app_token: str | None = None,
        token_rotation: bool | None = None,
        token_lifetime: float | None = None,
        redirect_uri: str | None = None,
    ) -> None:
        """Set the app's credentials and settings; what is not given stays as it was.

        ``token_lifetime``: seconds an access token lives with rotation; ``redirect_uri``: the
        app's configured redirect URL (used when the consent page gets none).
        """
        if client_id is not None:
            self.oauth.client_id = client_id
        if client_secret is not None:
            self.oauth.client_secret = client_secret
        if app_token is not None:
            self.directory.register_app_token(app_token)
        if token_rotation is not None:
            self.oauth.token_rotation = token_rotation
        if token_lifetime is not None:
            self.oauth.token_lifetime = token_lifetime
        if redirect_uri is not None:
            self.oauth.redirect_uri = redirect_uri

    def uninstall(self, team: str) -> list[Json]:
        """The app is removed from ``team``: its tokens are revoked (``token_revoked``), and
        the ``app_uninstalled`` and ``tokens_revoked`` event_callback bodies Slack sends come
        back for the test to deliver to the app."""
        return self.oauth.uninstall(team)

    def token_label(self, token: str) -> str | None:
        """The non-secret name calls record (``Call.token_label``) for ``token``."""
        issued = self.directory.tokens.get(token)
        return issued.label if issued else None

    # -- fault injection

    def fail_next(
        self,
        method: str | None = None,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        error: str | None = None,
        count: int = 1,
    ) -> None:
        """The next ``count`` calls to ``method`` (any method when None) fail.

        With ``error``: HTTP 200 ``{"ok": false, "error": error}``; otherwise HTTP ``status``
        (429 carries ``Retry-After: retry_after`` unless that is None).
        """
        self._faults.append(
            Fault(
                method=method, remaining=count, status=status, retry_after=retry_after, error=error
            )
        )

    def hang_next(self, method: str | None, seconds: float, count: int = 1) -> None:
        """Delay the answer to the next ``count`` calls to ``method`` by ``seconds``."""
        self._hangs.append(Hang(method=method, remaining=count, seconds=seconds))

    def release_hangs(self) -> None:
        """Answer every delayed call now (so that a server can stop at once)."""
        self._released.set()

    # -- Socket Mode

    @property
    def socket_connections(self) -> int:
        """How many Socket Mode connections are open."""
        return self.socket.connections

    @property
    def socket_envelopes(self) -> dict[str, Envelope]:
        """Every envelope sent, by id, with its latest ``retry_attempt``."""
        return self.socket.envelopes

    @property
    def socket_deliveries(self) -> list[Delivery]:
        """Each time an envelope was written to a connection (re-sends included)."""
        return self.socket.deliveries

    @property
    def socket_acks(self) -> list[SocketAck]:
        """Every ack received, in order (an envelope acked twice appears twice)."""
        return self.socket.acks

    async def socket_send(
        self, kind: EnvelopeKind, payload: Json, *, accepts_response_payload: bool | None = None
    ) -> str:
        """Send an envelope to one open connection (round-robin); its ``envelope_id``.

        ``kind``: ``slash_commands`` (payload: the command's fields), ``interactive`` (the
        block_actions / view_submission payload) or ``events_api`` (the event_callback body).
        ``accepts_response_payload`` defaults to Slack's choice for the kind. With no connection
        open, the envelope waits for the next one.
        """
        return await self.socket.send(
            kind, payload, accepts_response_payload=accepts_response_payload
        )

    async def socket_ack(self, envelope_id: str, timeout: float = 5.0) -> Json:  # noqa: ASYNC109 (the test's bound, not a cancel scope)
        """The ``payload`` of the envelope's first ack ({} when none); TimeoutError if none came."""
        return await self.socket.ack(envelope_id, within=timeout)

    async def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send ``{"type": "disconnect", "reason": reason}`` to every connection."""
        await self.socket.disconnect(reason)

    async def socket_drop(self) -> None:
        """Close every connection abruptly (no close frame); unacked envelopes wait."""
        await self.socket.drop(within=5.0)

    async def socket_wait_connections(self, count: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (the test's bound)
        """Return once ``count`` connections are open; TimeoutError otherwise."""
        await self.socket.wait_connections(count, within=timeout)

    # -- HTTP

    def app(self) -> web.Application:
        self._released = asyncio.Event()  # hang again, on the loop that will serve this app
        self.socket.release()
        app = web.Application()
        app.router.add_get("/api/{method}", self._handle_api)
        app.router.add_post("/api/{method}", self._handle_api)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        app.router.add_post("/respond/{key}", self._handle_respond)
        self.oauth.add_routes(app)
        self.socket.add_routes(app)
        return app

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = Call(method, {}, self._clock())
        self.calls.append(call)
        try:
            values, token = await read_args(request)
            # Secrets are never recorded: the sandbox page shows calls.
            call.args = {k: v for k, v in values.items() if k not in _SECRET_ARGS}
        except Refused as refusal:
            return answer(call, refusal)
        known = self.directory.tokens.get(token or "")
        if known is not None:
            call.team_id, call.token_label = known.team_id, known.label
        await self._maybe_hang(method)
        fault = take(self._faults, method)
        if fault is not None:
            return fault_answer(call, fault)
        # Mounted under a prefix (the sandbox serves it at /sandbox/slack), keep the prefix.
        prefix = request.path[: request.path.rfind("/api/")]
        args = Args(values, f"{request.url.origin()}{prefix}")
        try:
            app_method = self._app_methods.get(method)
            if app_method is not None:
                body = app_method(args, request, token)
                call.status = 200
                return web.json_response({"ok": True, **body})
            issued = self.directory.authenticate(token)
            handler = self._methods.get(method)
            if handler is None:
                raise Refused("unknown_method")
            body = handler(args, self.directory.team(issued.team_id or ""), issued)
        except Refused as refusal:
            return answer(call, refusal)
        call.status = 200
        return web.json_response({"ok": True, **body})

    async def _handle_upload(self, request: web.Request) -> web.Response:
        stored = self.files.get(request.match_info["file_id"])
        if stored is None:
            return web.Response(status=404, text="file_not_found")
        stored.content = await request.read()
        return web.Response(text=f"OK - {len(stored.content)}")

    def _oauth_v2_access(self, args: Args, request: web.Request, token: str | None) -> Json:
        del token
        return self.oauth.access(args, request.headers.get("Authorization"))

    def _apps_connections_open(self, args: Args, request: web.Request, token: str | None) -> Json:
        del request
        self.directory.authenticate(token, kind="app")
        return {"url": self.socket.open_url(args.base_url)}

    # -- call plumbing

    async def _maybe_hang(self, method: str) -> None:
        hang = take(self._hangs, method)
        if hang is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), hang.seconds)


# ---------------------------------------------------------------------------------------------
# Serving on loopback


class RunningFake:
    """A FakeSlack listening on a local port; ``api_url`` is the client's ``base_url``."""

    def __init__(self, fake: FakeSlack, runner: web.AppRunner, url: str) -> None:
        self.fake = fake
        self.url = url
        self._runner = runner

    @property
    def api_url(self) -> str:
        return f"{self.url}api/"

    @property
    def authorize_url(self) -> str:
        """The consent page, for ``SLACK_AUTHORIZE_URL``."""
        return f"{self.url}oauth/v2/authorize"

    async def close(self) -> None:
        self.fake.release_hangs()
        await self.fake.socket.close_all()
        await self._runner.cleanup()

    async def __aenter__(self) -> RunningFake:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def serve(fake: FakeSlack, host: str = "127.0.0.1", port: int = 0) -> RunningFake:
    """Serve ``fake`` on ``host``; port 0 picks a free port."""
    runner = web.AppRunner(fake.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
    except BaseException:
        await runner.cleanup()
        raise
    return RunningFake(fake, runner, f"http://{host}:{bound_port}/")

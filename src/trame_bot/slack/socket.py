"""Socket Mode (`SLACK_APP_TOKEN`): Slack's requests arrive over a websocket this server opens,
for the same Bolt app as `/slack/events`, which stays served: Slack sends nothing there in
Socket Mode, and keeping it lets a deployment switch modes without another route table."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import ClientWebSocketResponse, web
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from trame_bot.config import Settings
from trame_bot.http.app import BOLT

log = logging.getLogger("trame_bot.slack.socket")
FIRST_DELAY = 1.0
"""Seconds before the first retry of a failed connection; doubled each attempt up to MAX_DELAY."""
MAX_DELAY = 30.0
PING_INTERVAL = 5.0
"""Seconds between pings; a socket silent for four of them is taken for dead and replaced."""
REMEMBERED = 10_000
"""Envelope ids kept to recognise a re-sent envelope (Slack re-sends within minutes)."""
REFUSED_TOKEN = ("invalid_auth", "not_authed", "not_allowed_token_type", "token_revoked")
"""`apps.connections.open` answers that no retry fixes: the operator must change the token."""

SOCKET: web.AppKey[SocketMode] = web.AppKey("socket_mode")


def backoff(attempt: int, first: float, cap: float, rand: Callable[[], float]) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, …): exponential, capped, and half
    of it random so that many replicas cut off together do not come back in step."""
    ceiling = min(cap, first * 2.0 ** min(attempt - 1, 32))  # 2.0 ** 1024 overflows
    return ceiling / 2 + rand() * ceiling / 2


def _describe(exc: BaseException) -> str:
    """What went wrong, without the exception's text: a websocket error names the URL, and its
    `ticket` is as good as a credential while it lives."""
    if isinstance(exc, SlackApiError):
        return f"Slack answered {exc.response.get('error') or exc.response.status_code}"
    return type(exc).__name__


class _Client(SocketModeClient):
    """slack_sdk's aiohttp Socket Mode client, which does the protocol (hello, envelopes, acks,
    `disconnect`, pings) and reconnects when the socket closes or goes stale. Added: backoff
    with jitter between failed attempts, a fresh `apps.connections.open` URL for each attempt
    (they are short-lived, and the SDK retries a failed one forever), one reconnect at a time,
    and a log line per (re)connect or refresh, without the URL's ticket or the token."""

    def __init__(self, *, first_delay: float, max_delay: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.first_delay, self.max_delay = first_delay, max_delay
        self.connections = 0
        """Sessions established so far; a reconnect asked for under an older one is moot."""
        self.stopping = asyncio.Event()

    async def connect(self) -> None:
        # Replaces the SDK's loop, which keeps retrying the same (expired) URL every ping
        # interval and logs a stack trace each time.
        attempt = 0
        while not self.closed:
            old = self.current_session
            self.auto_reconnect_enabled = False  # no monitor races this reconnect
            if old is not None:
                with contextlib.suppress(Exception):
                    await old.close()
            try:
                url = self.wss_uri or await self.issue_new_wss_url()
                self.wss_uri = None  # used once: the next attempt asks for a new one
                session = await self.aiohttp_client_session.ws_connect(
                    url, autoping=False, heartbeat=self.ping_interval, proxy=self.proxy
                )
            except Exception as exc:
                self.wss_uri = None
                if self.closed:
                    return
                attempt += 1
                delay = self._retry_in(attempt, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
                continue
            await self._established(session)
            return

    def _retry_in(self, attempt: int, exc: Exception) -> float:
        """Seconds until the next attempt, said in one log line (an error when only the
        operator can fix it)."""
        delay = backoff(attempt, self.first_delay, self.max_delay, random.random)
        error = None
        if isinstance(exc, SlackApiError):
            error = exc.response.get("error")
            if error == "ratelimited":
                delay = max(delay, float(exc.response.headers.get("Retry-After") or 30))
        refused = error in REFUSED_TOKEN
        log.log(
            logging.ERROR if refused else logging.WARNING,
            "Socket Mode: could not connect (%s%s); retrying in %.1f s",
            _describe(exc),
            ": check SLACK_APP_TOKEN (xapp-…, scope connections:write)" if refused else "",
            delay,
        )
        return delay

    async def issue_new_wss_url(self) -> str:
        # The SDK's version sleeps on its own when rate limited and logs every failure with
        # Slack's whole answer; `connect` above waits and says it in one line instead.
        response = await self.web_client.apps_connections_open(app_token=self.app_token)
        return str(response["url"])

    async def _established(self, session: ClientWebSocketResponse) -> None:
        self.current_session = session
        self.connections += 1
        self.stale = False
        self.last_ping_pong_time = None
        self.auto_reconnect_enabled = self.default_auto_reconnect_enabled
        log.info(
            "Socket Mode %s (connection %d)",
            "connected" if self.connections == 1 else "reconnected",
            self.connections,
        )
        await session.ping(f"sdk-ping-pong:{time.time()}".encode())
        # Last: when called from the receiver of the old session, this cancels the caller.
        if self.current_session_monitor is not None:
            self.current_session_monitor.cancel()
        self.current_session_monitor = asyncio.ensure_future(self.monitor_current_session())
        if self.message_receiver is not None:
            self.message_receiver.cancel()
        self.message_receiver = asyncio.ensure_future(self.receive_messages())

    async def connect_to_new_endpoint(self, force: bool = False) -> None:
        # One reconnect at a time: a socket that closes right after `disconnect` makes both
        # the receiver and the `disconnect` handler ask; the second finds it done.
        seen = self.connections
        async with self.connect_operation_lock:
            if self.closed or self.connections != seen:
                return
            if force or not await self.is_connected():
                if not force:
                    log.info("Socket Mode: the connection was lost; reconnecting")
                await self.connect()

    async def run_message_listeners(self, message: dict[str, Any], raw_message: str) -> None:
        if message.get("type") == "disconnect":
            log.info("Socket Mode: Slack asked to reconnect (%s)", message.get("reason"))
        await super().run_message_listeners(message, raw_message)

    async def close(self) -> None:
        self.stopping.set()
        await super().close()  # type: ignore[no-untyped-call]  # the SDK's is unannotated


class SocketMode:
    """Bolt's app behind a Socket Mode connection: what Bolt's `AsyncSocketModeHandler` does,
    with the client above, an ack for every envelope and each envelope dispatched once."""

    def __init__(
        self,
        bolt: AsyncApp,
        app_token: str,
        api_url: str,
        *,
        timeout: int = 10,
        ping_interval: float = PING_INTERVAL,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
    ) -> None:
        self.bolt = bolt
        # `apps.connections.open` goes to SLACK_API_URL like every other call.
        web_client = AsyncWebClient(base_url=api_url, timeout=timeout)
        self.client = _Client(
            app_token=app_token,
            web_client=web_client,
            ping_interval=ping_interval,
            first_delay=first_delay,
            max_delay=max_delay,
        )
        self.client.socket_mode_request_listeners.append(self.handle)
        self.answers: OrderedDict[str, asyncio.Future[dict[str, Any] | None]] = OrderedDict()
        """The ack payload of each envelope dispatched lately, by envelope id."""

    @property
    def connections(self) -> int:
        return self.client.connections

    async def connect(self) -> None:
        """Returns once connected (retrying with backoff until then, or until closed)."""
        async with self.client.connect_operation_lock:
            await self.client.connect()

    async def close(self) -> None:
        await self.client.close()

    async def handle(self, client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        """Bolt dispatches the envelope; what a listener passed to `ack(...)` (a command's reply
        text, a form's `response_action`) becomes the envelope ack's payload.

        Slack sends an envelope again when its ack did not arrive (the socket dropped just
        then): an envelope this process has dispatched is acked again with the same payload,
        not dispatched twice, so a click is not told "already decided" by its own first try.
        """
        envelope_id = request.envelope_id
        answer = self.answers.get(envelope_id)
        if answer is None:
            answer = asyncio.get_running_loop().create_future()
            self.answers[envelope_id] = answer
            while len(self.answers) > REMEMBERED:
                self.answers.popitem(last=False)
            try:
                answer.set_result(await self._dispatch(request))
            except BaseException:
                self.answers.pop(envelope_id, None)  # not answered: a re-sent copy is dispatched
                answer.cancel()
                raise
        else:
            log.info(
                "Socket Mode: %s envelope sent again (attempt %s) was handled already",
                request.type,
                request.retry_attempt,
            )
        payload = await asyncio.shield(answer)
        await client.send_socket_mode_response(
            SocketModeResponse(envelope_id=envelope_id, payload=payload)
        )

    async def _dispatch(self, request: SocketModeRequest) -> dict[str, Any] | None:
        response = await run_async_bolt_app(self.bolt, request)
        if response.status != 200:
            # Over HTTP the edge answers such requests itself; here nobody else would ack.
            log.info(
                "acknowledged a %s envelope Bolt could not handle (%s)",
                request.type,
                response.status,
            )
            return None
        if not response.body:
            return None
        content_type = (response.headers.get("content-type") or [""])[0]
        if content_type.startswith("application/json"):
            payload: dict[str, Any] = json.loads(response.body)
            return payload
        return {"text": response.body}


def attach(app: web.Application, settings: Settings, **options: Any) -> None:
    """Connect the Bolt app of `app` (`app[BOLT]`) over Socket Mode while `app` runs, in the
    background so that the HTTP server (API, health, metrics) serves even while Slack cannot
    be reached; closed first at shutdown, before the outbox worker stops. `options` go to
    `SocketMode` (tests shorten the delays). Without SLACK_APP_TOKEN it does nothing."""
    token = settings.slack_app_token
    if not token:
        return

    async def running(app: web.Application) -> AsyncIterator[None]:
        socket = SocketMode(
            app[BOLT], token, settings.slack_api_url, timeout=settings.slack_timeout, **options
        )
        app[SOCKET] = socket
        connecting = asyncio.create_task(socket.connect())
        try:
            yield
        finally:
            await socket.close()
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
            log.info("Socket Mode closed")

    app.cleanup_ctx.append(running)

"""Distributed mode's install path in Bolt: `/slack/install` needs an operator's install link,
the callback binds the installing team to the link's workspace, and every Slack call (the
code exchange, `auth.test`, token refreshes) goes through our client to `SLACK_API_URL`.

Tokens live in our tables, sealed (`services/installations.py`), behind the slack_sdk stores
of `installation_store.py`.
"""

from __future__ import annotations

import html
import logging
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.oauth import OAuthStateUtils
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.web.async_client import AsyncWebClient

from trame_bot.config import Distributed
from trame_bot.errors import Conflict, Forbidden, TrameError
from trame_bot.services import install_links, installations
from trame_bot.services.context import Context
from trame_bot.services.installations import SlackInstall
from trame_bot.slack.installation_store import (
    ROTATE_BEFORE_MINUTES,
    GrantStateStore,
    InstallationStore,
)

log = logging.getLogger(__name__)
INSTALL_PATH = install_links.INSTALL_PATH
REDIRECT_PATH = "/slack/oauth_redirect"
_BOLT_LOG = logging.getLogger("trame_bot.slack.oauth.bolt")
# Bolt's flow logs a refused code exchange with the code in it: we say it ourselves instead.
_BOLT_LOG.setLevel(logging.ERROR)
AUTHORIZED_TOKENS = 1_000
"""How many `auth.test` answers the authorize keeps. Bolt keys them by token and never drops
one, and a rotating token is a new key every 12 hours: fifty teams would add 36,500 entries a
year (~1.6 KB each, ~58 MB, spent tokens in clear among them). A thousand holds a current and
a previous token for 500 teams in ~1.6 MB; past it, a team's next request calls `auth.test`."""


@cache
def bot_scopes() -> tuple[str, ...]:
    """The bot scopes the install asks for: the app manifest's, so the two cannot differ."""
    manifest = yaml.safe_load(
        (files("trame_bot") / "slack" / "manifest.yml").read_text(encoding="utf-8")
    )
    return tuple(manifest["oauth_config"]["scopes"]["bot"])


class StateCookie(OAuthStateUtils):
    """Bolt's state cookie, `Secure` only when this server is reached over https: on a plain
    http PUBLIC_URL (the local sandbox) a Secure cookie would never come back, and every
    install would be refused as started in another browser."""

    def __init__(self, *, secure: bool, expiration_seconds: int) -> None:
        super().__init__(expiration_seconds=expiration_seconds)
        self._secure = secure

    def build_set_cookie_for_new_state(self, state: str) -> str:
        return self._plain(super().build_set_cookie_for_new_state(state))

    def build_set_cookie_for_deletion(self) -> str:
        return self._plain(super().build_set_cookie_for_deletion())

    def _plain(self, cookie: str) -> str:
        return cookie if self._secure else cookie.replace("; Secure", "")


# ---- the flow ---------------------------------------------------------------------------------


class GrantedOAuthFlow(AsyncOAuthFlow):
    """Bolt's OAuth flow with an operator's grant in front of it and our pages: every refusal
    is a page that says why, with nothing stored; never a stack trace."""

    def __init__(self, ctx: Context, *, client: AsyncWebClient, settings: AsyncOAuthSettings):
        super().__init__(client=client, logger=_BOLT_LOG, settings=settings)
        self._ctx = ctx

    async def handle_installation(self, request: AsyncBoltRequest) -> BoltResponse:
        try:
            state = await self.settings.state_store.async_issue(grant=_first(request, "grant"))
        except TrameError as exc:
            return _refusal(exc)
        except Exception:
            log.exception("the install page failed")
            return _page(500, "Something went wrong", "trame-bot could not start the install.")
        url = await self.build_authorize_url(state, request)
        cookie = self.settings.state_utils.build_set_cookie_for_new_state(state)
        headers = {"Content-Type": "text/html; charset=utf-8", "Location": url}
        return BoltResponse(status=302, body="", headers={**headers, "Set-Cookie": [cookie]})

    async def handle_callback(self, request: AsyncBoltRequest) -> BoltResponse:
        try:
            return await self._callback(request)
        except TrameError as exc:
            return _refusal(exc)
        except Exception:
            log.exception("the install callback failed")
            return _page(500, "Something went wrong", "trame-bot could not finish the install.")

    async def _callback(self, request: AsyncBoltRequest) -> BoltResponse:
        error = _first(request, "error")
        if error == "access_denied":
            raise Forbidden("the install was cancelled on Slack's page; nothing was installed")
        if error is not None:
            raise Forbidden(f"Slack stopped the install ({error}); nothing was installed")
        state = _first(request, "state")
        if not self.settings.state_utils.is_valid_browser(state, request.headers):
            raise Forbidden(
                "this install did not start in this browser (its cookie is missing): open the "
                "install link again, in the browser you finish it in"
            )
        assert state is not None  # is_valid_browser refuses a request without one
        # Refused before Slack's code is spent: a forged, used or expired state stops here.
        await install_links.check_state(self._ctx, state)
        code = _first(request, "code")
        if code is None:
            raise Forbidden("Slack sent no install code; open the install link again")
        installation = await self.run_installation(code)
        if installation is None:
            log.warning("Slack refused an install code")
            raise Forbidden("Slack did not accept this install; open the install link again")
        done = await installations.complete_install(self._ctx, state, _install(installation))
        log.info("Slack team %s installed for workspace %s", done.team_id, done.workspace)
        return _page(
            200,
            "trame-bot is installed",
            f"trame-bot is installed in the Slack team {done.team_name} for {done.workspace}. "
            "You can close this page.",
            cookie=self.settings.state_utils.build_set_cookie_for_deletion(),
        )


def _install(found: Installation) -> SlackInstall:
    if not found.team_id or not found.bot_token:
        raise Conflict("Slack installed no bot in a team (org-wide installs are not supported)")
    return SlackInstall(
        team_id=found.team_id,
        team_name=found.team_name or found.team_id,
        bot_token=found.bot_token,
        enterprise_id=found.enterprise_id,
        app_id=found.app_id,
        bot_user_id=found.bot_user_id,
        bot_id=found.bot_id,
        bot_scopes=",".join(found.bot_scopes or []),
        bot_refresh_token=found.bot_refresh_token,
        bot_token_expires_at=installations.expiry(found.bot_token_expires_at),
        installed_by=found.user_id,
    )


def _first(request: AsyncBoltRequest, name: str) -> str | None:
    values = request.query.get(name)
    return values[0] if values else None


_STATUS = {"InvalidInput": 400, "NotFound": 400, "Forbidden": 403, "Conflict": 409}


def _refusal(exc: TrameError) -> BoltResponse:
    status = _STATUS.get(type(exc).__name__, 503)
    return _page(status, "trame-bot was not installed", exc.message)


def _page(status: int, title: str, message: str, *, cookie: str | None = None) -> BoltResponse:
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width">'
        f"<title>{html.escape(title)}</title>"
        '<body style="font-family:system-ui,sans-serif;max-width:36em;margin:4em auto">'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    headers: dict[str, Any] = {"Content-Type": "text/html; charset=utf-8"}
    if cookie is not None:
        headers["Set-Cookie"] = [cookie]
    return BoltResponse(status=status, body=body, headers=headers)


async def web_response(answer: BoltResponse) -> web.Response:
    """Bolt's aiohttp adapter, keeping the cookie as the flow made it: the adapter marks every
    cookie Secure, which a plain-http sandbox would never send back (see `StateCookie`)."""
    response = await to_aiohttp_response(answer)
    for cookie in answer.cookies():
        for name, morsel in cookie.items():
            if not morsel["secure"] and name in response.cookies:
                response.cookies[name]["secure"] = False
    return response


# ---- construction ----------------------------------------------------------------------------


class RecentResults(dict[str, AuthorizeResult]):
    """Bolt's authorize cache, bounded: past `limit` entries the oldest one goes (first in,
    first out; Bolt only reads with `in` and `[]`, and evicting a live token costs one
    `auth.test`)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, token: str, result: AuthorizeResult) -> None:
        super().__setitem__(token, result)
        while len(self) > self.limit:
            del self[next(iter(self))]


def build_oauth(
    ctx: Context, mode: Distributed, client: AsyncWebClient
) -> tuple[GrantedOAuthFlow, AsyncInstallationStoreAuthorize]:
    """The flow and the authorize Bolt runs with. Both use `client` (ours, no token): the
    authorize that `AsyncOAuthSettings` builds has a rotator on Slack's default URL, so ours
    replaces it and token refreshes reach `SLACK_API_URL` too."""
    store = InstallationStore(ctx)
    settings = AsyncOAuthSettings(
        client_id=mode.client_id,
        client_secret=mode.client_secret,
        scopes=list(bot_scopes()),
        user_scopes=[],
        redirect_uri=mode.public_url.rstrip("/") + REDIRECT_PATH,
        install_path=INSTALL_PATH,
        install_page_rendering_enabled=False,
        redirect_uri_path=REDIRECT_PATH,
        authorization_url=mode.authorize_url,
        installation_store=store,
        installation_store_bot_only=True,
        token_rotation_expiration_minutes=ROTATE_BEFORE_MINUTES,
        state_store=GrantStateStore(ctx),
        state_expiration_seconds=int(install_links.STATE_LIFETIME.total_seconds()),
        logger=_BOLT_LOG,
    )
    settings.state_utils = StateCookie(
        secure=mode.public_url.startswith("https://"),
        expiration_seconds=settings.state_expiration_seconds,
    )
    authorize = AsyncInstallationStoreAuthorize(
        logger=_BOLT_LOG,
        installation_store=store,
        client_id=mode.client_id,
        client_secret=mode.client_secret,
        token_rotation_expiration_minutes=ROTATE_BEFORE_MINUTES,
        bot_only=True,
        client=client,
        # Each request still reads its team's installation (an uninstalled or disconnected
        # team is refused at once); what is kept is Slack's auth.test answer for a token
        # already checked, which would otherwise be a call to Slack before every ack.
        cache_enabled=True,
    )
    authorize.authorize_result_cache = RecentResults(AUTHORIZED_TOKENS)
    return GrantedOAuthFlow(ctx, client=client, settings=settings), authorize

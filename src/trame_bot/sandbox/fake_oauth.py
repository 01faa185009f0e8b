"""Slack's OAuth v2 for the fake: the consent page at ``/oauth/v2/authorize`` and
``oauth.v2.access``, which exchanges a code (or, with token rotation, a refresh token) for tokens.

Refused as Slack refuses: a wrong client id (``invalid_client_id``) or secret
(``bad_client_secret``), an unknown, expired or already used code (``invalid_code``), a
``redirect_uri`` other than the one authorized (``bad_redirect_uri``), an unknown or used refresh
token (``invalid_refresh_token``). The consent page refuses an unknown client id, no scope, a
redirect URI that is missing (with none configured) or outside the configured one, and an
unknown or deactivated team, with a 400 page.
"""

from __future__ import annotations

import base64
import binascii
import html
import itertools
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web
from yarl import URL

from trame_bot.sandbox.fake_records import APP_ID, Json, Team, User
from trame_bot.sandbox.fake_teams import Directory
from trame_bot.sandbox.fake_wire import Args, Refused
from trame_bot.sandbox.slack_requests import VERIFICATION_TOKEN

CODE_LIFETIME = 600.0
"""Slack's authorization codes expire after ten minutes."""
TOKEN_LIFETIME = 43_200.0
"""With token rotation, Slack's access tokens live twelve hours."""


@dataclass
class _Code:
    team_id: str
    installer: str
    scopes: tuple[str, ...]
    client_id: str
    redirect_uri: str
    expires_at: float
    used: bool = False


class FakeOAuth:
    """The app's credentials, the codes handed out and the installs made with them."""

    def __init__(
        self,
        directory: Directory,
        clock: Callable[[], float],
        *,
        client_id: str | None,
        client_secret: str | None,
        app_name: str,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri: str | None = None
        """The app's configured redirect URL: the default, and a prefix any other must match."""
        self.app_name = app_name
        self.token_rotation = False
        self.token_lifetime = TOKEN_LIFETIME
        self._directory = directory
        self._clock = clock
        self._codes: dict[str, _Code] = {}
        self._events = itertools.count(1)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/oauth/v2/authorize", self._consent_page)
        app.router.add_post("/oauth/v2/authorize", self._consent_answer)

    # -- installing

    def install(self, team_id: str, installer: str, scopes: tuple[str, ...]) -> Json:
        """A new bot token for ``team_id``, in ``oauth.v2.access``'s answer."""
        team = self._directory.team(team_id)
        team.installer, team.scopes = installer, scopes
        return {
            "app_id": APP_ID,
            "authed_user": {"id": installer},
            "scope": ",".join(scopes),
            "token_type": "bot",
            **self._new_tokens(team),
            "bot_user_id": team.bot_user_id,
            "team": {"id": team.id, "name": team.name},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _new_tokens(self, team: Team) -> Json:
        if not self.token_rotation:
            return {"access_token": self._directory.issue(team.id, "bot").value}
        access = self._directory.issue(team.id, "bot", lifetime=self.token_lifetime)
        refresh = self._directory.issue(team.id, "refresh")
        return {
            "access_token": access.value,
            "refresh_token": refresh.value,
            "expires_in": int(self.token_lifetime),
        }

    def uninstall(self, team_id: str) -> list[Json]:
        """Revoke every token of ``team_id``; the events Slack sends about it."""
        team = self._directory.team(team_id)
        self._directory.revoke_team(team_id)
        team.installer = None
        revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [team.bot_user_id]}}
        return [
            self._event_callback(team, {"type": "app_uninstalled"}),
            self._event_callback(team, revoked),
        ]

    def _event_callback(self, team: Team, event: Json) -> Json:
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": team.id,
            "api_app_id": APP_ID,
            "event": {**event, "event_ts": f"{self._clock():.6f}"},
            "type": "event_callback",
            "event_id": f"Ev0U{next(self._events):08d}",
            "event_time": int(self._clock()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team.id,
                    "user_id": team.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }

    # -- oauth.v2.access

    def access(self, args: Args, authorization: str | None) -> Json:
        client_id, client_secret = _client_credentials(args, authorization)
        if self.client_id is None or client_id != self.client_id:
            raise Refused("invalid_client_id")
        if client_secret != self.client_secret:
            raise Refused("bad_client_secret")
        if args.text("grant_type") == "refresh_token":
            return self._refresh(args.text("refresh_token"))
        code = self._codes.get(args.text("code") or "")
        if code is None or code.used or self._clock() >= code.expires_at:
            raise Refused("invalid_code")
        if code.client_id != client_id:
            raise Refused("invalid_code")
        redirect_uri = args.text("redirect_uri")
        if redirect_uri is not None and redirect_uri != code.redirect_uri:
            raise Refused("bad_redirect_uri")
        code.used = True
        return self.install(code.team_id, code.installer, code.scopes)

    def _refresh(self, value: str | None) -> Json:
        refresh = self._directory.tokens.get(value or "")
        if refresh is None or refresh.kind != "refresh" or refresh.used or refresh.revoked:
            raise Refused("invalid_refresh_token")
        refresh.used = True
        team = self._directory.team(refresh.team_id or "")
        if not team.active:
            raise Refused("account_inactive")
        return {
            "app_id": APP_ID,
            "scope": ",".join(team.scopes),
            "token_type": "bot",
            **self._new_tokens(team),
            "bot_user_id": team.bot_user_id,
            "team": {"id": team.id, "name": team.name},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    # -- the consent page

    async def _consent_page(self, request: web.Request) -> web.Response:
        query = request.query
        problem = self._request_problem(query)
        if problem is not None:
            return _page(problem, status=400)
        asked = query.get("team")
        teams = [
            t
            for t in self._directory.teams.values()
            if t.active and (asked is None or t.id == asked)
        ]
        if not teams:
            return _page("<p>No workspace to install the app in.</p>", status=400)
        scopes = _scopes(query.get("scope", ""))
        items = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in scopes)
        forms = "".join(self._team_form(request.path, query, team) for team in teams)
        return _page(
            f"<h1>{html.escape(self.app_name)} is requesting permission to access "
            f"a Slack workspace</h1><p>It will be able to:</p><ul class='scopes'>{items}</ul>"
            f"{forms}"
        )

    def _team_form(self, action: str, query: Mapping[str, str], team: Team) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(query.get(name, ""))}">'
            for name in ("client_id", "scope", "user_scope", "state", "redirect_uri")
        )
        people = [
            u for u in self._directory.users.values() if u.team_id == team.id and not u.is_bot
        ]
        options = "".join(
            f'<option value="{html.escape(u.id)}">{html.escape(u.real_name)}</option>'
            for u in people
        )
        chooser = (
            f'<label>Installing as <select name="user">{options}</select></label>' if people else ""
        )
        return (
            f'<section class="team" data-team="{html.escape(team.id)}">'
            f"<h2>{html.escape(team.name)} <small>{html.escape(team.domain)}.slack.com</small></h2>"
            f'<form method="post" action="{html.escape(action)}">{hidden}'
            f'<input type="hidden" name="team" value="{html.escape(team.id)}">{chooser}'
            '<button type="submit" name="action" value="allow">Allow</button> '
            '<button type="submit" name="action" value="cancel">Cancel</button>'
            "</form></section>"
        )

    async def _consent_answer(self, request: web.Request) -> web.Response:
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        problem = self._request_problem(fields)
        if problem is not None:
            return _page(problem, status=400)
        team = self._directory.teams.get(fields.get("team", ""))
        if team is None or not team.active:
            return _page("<p>Unknown or deactivated workspace.</p>", status=400)
        redirect_uri = fields.get("redirect_uri") or self.redirect_uri or ""
        redirect = URL(redirect_uri)
        state = {"state": fields["state"]} if "state" in fields else {}
        if fields.get("action") != "allow":
            raise web.HTTPFound(redirect.update_query(error="access_denied", **state))
        installer = self._installer(team, fields.get("user"))
        if installer is None:
            return _page("<p>That user is not a member of this workspace.</p>", status=400)
        code = f"{int(self._clock())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        self._codes[code] = _Code(
            team.id,
            installer,
            _scopes(fields.get("scope", "")),
            fields["client_id"],
            redirect_uri,
            self._clock() + CODE_LIFETIME,
        )
        raise web.HTTPFound(redirect.update_query(code=code, **state))

    def _request_problem(self, fields: Mapping[str, str]) -> str | None:
        if self.client_id is None or fields.get("client_id") != self.client_id:
            return "<p>Invalid <code>client_id</code> parameter.</p>"
        redirect_uri = fields.get("redirect_uri") or self.redirect_uri or ""
        if not redirect_uri.startswith(("http://", "https://")):
            return "<p>Missing or invalid <code>redirect_uri</code>.</p>"
        if self.redirect_uri and not redirect_uri.startswith(self.redirect_uri):
            return "<p><code>redirect_uri</code> did not match any configured URIs.</p>"
        if not _scopes(fields.get("scope", "")):
            return "<p>Invalid permissions requested: no <code>scope</code>.</p>"
        return None

    def _installer(self, team: Team, chosen: str | None) -> str | None:
        """The chosen member of ``team``; by default its first person, or a made-up admin."""
        if chosen:
            user = self._directory.user(chosen)
            return chosen if user is not None and user.team_id == team.id else None
        people = [
            u for u in self._directory.users.values() if u.team_id == team.id and not u.is_bot
        ]
        if people:
            return people[0].id
        admin = User(f"U{team.id[1:]}ADMIN", "admin", f"{team.name} Admin", team_id=team.id)
        return self._directory.add_user(admin).id


def _scopes(raw: str) -> tuple[str, ...]:
    return tuple(s for s in (part.strip() for part in raw.split(",")) if s)


def _client_credentials(args: Args, authorization: str | None) -> tuple[str | None, str | None]:
    """HTTP basic auth (as slack-sdk sends them), else the form fields."""
    if authorization and authorization.startswith("Basic "):
        try:
            decoded = base64.b64decode(authorization.removeprefix("Basic "), validate=True)
            client_id, _, client_secret = decoded.decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Refused("invalid_client_id") from None
        return client_id, client_secret
    return args.text("client_id"), args.text("client_secret")


def _page(body: str, *, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        content_type="text/html",
        text=(
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>Slack: install an app</title></head>"
            f"<body><main>{body}</main></body></html>"
        ),
    )

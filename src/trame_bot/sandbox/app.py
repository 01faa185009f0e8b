"""`trame-bot serve --sandbox`: the real server in distributed mode, two Slack teams on a fake
Slack, their workspaces, and a page at `/sandbox` that stands in for Slack.

The bot is not told it is in a sandbox. It gets generated OAuth credentials and signing secret,
an encryption key kept beside the database, `SLACK_API_URL` and `SLACK_AUTHORIZE_URL` pointing at
a fake Slack mounted in the same server (`/sandbox/slack/`), and installs into each team through
its real OAuth flow (see `install`). Its replies go to the fake through its real client; the
page's intents go the other way as signed requests to `/slack/events` (see `relay`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from yarl import URL

from trame_bot.bootstrap import Deps, build_web_app
from trame_bot.config import Distributed, Settings
from trame_bot.errors import ConfigError
from trame_bot.sandbox import install, seed
from trame_bot.sandbox.fake_slack import TEAM_ID, FakeSlack
from trame_bot.sandbox.page import Page, dm_channel
from trame_bot.sandbox.relay import Outcome, Relay
from trame_bot.services import connectors, installations, workflows
from trame_bot.slack.oauth import REDIRECT_PATH

log = logging.getLogger("trame_bot.sandbox")
SLACK_PREFIX = "/sandbox/slack"
STATIC = Path(__file__).parent / "static"
ASSETS = {"sandbox.js": "text/javascript", "sandbox.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

PAGE: web.AppKey[Page] = web.AppKey("sandbox_page", Page)
RELAY: web.AppKey[Relay] = web.AppKey("sandbox_relay", Relay)
DEPS: web.AppKey[Deps] = web.AppKey("sandbox_deps", Deps)
API_KEYS: web.AppKey[dict[str, str]] = web.AppKey("sandbox_api_keys", dict)
"""The engine panel's API key, by workspace."""
PENDING: web.AppKey[dict[str, install.Pending]] = web.AppKey("sandbox_pending", dict)
"""The install link of each team not installed when the sandbox started, by team id."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def loopback_url(host: str, port: int) -> str:
    """How this process reaches itself: the bound address, or loopback for a wildcard."""
    if host in ("", "0.0.0.0", "::", "localhost"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def sandbox_settings(settings: Settings, url: str) -> Settings:
    """Distribution by OAuth with generated credentials, the fake Slack as the Web API and the
    consent page, and the encryption key kept beside the database (so that a restart opens
    the tokens it stored)."""
    if not settings.is_sqlite:
        raise ConfigError(
            "--sandbox seeds demo workspaces and runs on SQLite only: unset DATABASE_URL "
            "(or point it at a sqlite:/// file)"
        )
    return replace(
        settings,
        slack_bot_token=None,
        slack_client_id=f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**12)}",
        slack_client_secret=secrets.token_hex(16),
        slack_signing_secret=secrets.token_hex(20),
        slack_api_url=f"{url}{SLACK_PREFIX}/api/",
        slack_authorize_url=f"{url}{SLACK_PREFIX}/oauth/v2/authorize",
        public_url=url,
        encryption_keys=(install.encryption_key(settings.database_url),),
    )


def sandbox_app_factory(url: str) -> Callable[[Deps], Awaitable[web.Application]]:
    """For `run_server`: seed, then the bot's server with the sandbox added."""

    async def make(deps: Deps) -> web.Application:
        return await build_sandbox_app(deps, url)

    return make


def fake_slack(mode: Distributed, url: str) -> FakeSlack:
    """The app as registered with the fake Slack, and the sandbox's two teams."""
    fake = FakeSlack(
        "",
        client_id=mode.client_id,
        client_secret=mode.client_secret,
        redirect_uri=f"{url}{REDIRECT_PATH}",
    )
    # The fake's built-in first team is no part of the sandbox: off its consent page.
    fake.deactivate_team(TEAM_ID)
    for team in seed.TEAMS:
        fake.add_team(team.id, team.name)
        for channel in team.channels:
            fake.add_channel(channel, team=team.id)
        for person in team.people:
            fake.add_user(person.id, name=person.name.lower(), real_name=person.name, team=team.id)
    return fake


async def build_sandbox_app(deps: Deps, url: str) -> web.Application:
    """The server `build_web_app` makes, plus the fake Slack and the page. ``url`` is where
    this server listens, for the bot's client, the OAuth redirect and the relay's requests."""
    mode = deps.settings.slack_mode()
    if not isinstance(mode, Distributed):
        raise ConfigError("the sandbox runs distributed: use sandbox_settings")
    fake = fake_slack(mode, url)
    if await seed.seed(deps.ctx):
        log.info("sandbox: demo workspaces %r and %r created", seed.WORKSPACE, seed.GLOBEX)
    keys = {t.workspace: await seed.fresh_api_key(deps.ctx, t.workspace) for t in seed.TEAMS}
    pending = await install.prepare(deps.ctx, fake, seed.TEAMS, url)
    app = build_web_app(deps)
    app[DEPS] = deps
    app[API_KEYS] = keys
    app[PENDING] = pending

    async def relay(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[RELAY] = Relay(
                fake,
                mode.signing_secret,
                events_url=f"{url}/slack/events",
                fake_url=f"{url}{SLACK_PREFIX}",
                session=session,
            )
            app[PAGE] = Page(fake, app[RELAY])
            yield

    async def install_at_start(app: web.Application) -> AsyncIterator[None]:
        first = [p for p in pending.values() if p.team.installs_at_start]
        task = asyncio.create_task(install.install_at_start(url, first)) if first else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.extend([relay, install_at_start])
    app.router.add_get("/", _to_page)
    app.router.add_get("/sandbox", page)
    app.router.add_get("/sandbox/", _to_page)
    app.router.add_get("/sandbox/static/{name}", asset)
    app.router.add_get("/sandbox/state", state)
    app.router.add_get("/sandbox/files/{file_id}", download)
    for path, handler in INTENTS.items():
        app.router.add_post(f"/sandbox/{path}", _intent(handler))
    app.add_subapp(SLACK_PREFIX, fake.app())
    log.info("sandbox: open %s/sandbox", url)
    return app


# ---- the page and its state ----------------------------------------------------------------


async def _to_page(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/sandbox")


async def page(_request: web.Request) -> web.Response:
    return web.Response(
        body=(STATIC / "index.html").read_bytes(),
        content_type="text/html",
        charset="utf-8",
        headers=SECURITY_HEADERS,
    )


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.Response(
        body=(STATIC / name).read_bytes(),
        content_type=ASSETS[name],
        charset="utf-8",
        headers=SECURITY_HEADERS,
    )


async def state(request: web.Request) -> web.Response:
    user = _person(request.query.get("user") or seed.EVERYONE[0].id)
    team = _team(user)
    ctx = request.app[DEPS].ctx
    body = request.app[PAGE].state(user)
    body["teams"] = [await _team_state(request.app, t) for t in seed.TEAMS]
    found = await workflows.list_workflows(ctx, team.workspace)
    body["engine"] = {
        "api_key": request.app[API_KEYS][team.workspace],
        "workspace": team.workspace,
        "workflows": [
            {
                "key": w.key,
                "name": w.name,
                "status": w.status.value,
                "triggers": [t.key for t in w.triggers],
            }
            for w in found
        ],
        # For the panel's health report (the engine's `POST /connectors/{key}/health`): a
        # person breaks and recovers a connector as the engine would see it.
        "connectors": [
            {"key": c.key, "toolkit": c.toolkit, "health": c.health.value}
            for c in await connectors.list_connectors(ctx, team.workspace)
        ],
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def _team_state(app: web.Application, team: seed.SlackTeam) -> dict[str, Any]:
    """A team for the switcher: installed or not, and then the operator's link that installs
    it (opened with the team named, as when its admin is signed in to that Slack)."""
    connection = await installations.slack_connection(app[DEPS].ctx, team.workspace)
    pending = app[PENDING].get(team.id)
    link = None
    if not connection.connected and pending is not None:
        link = str(URL(pending.link).update_query(team=team.id))
    return {
        "id": team.id,
        "name": team.name,
        "workspace": team.workspace,
        "person": team.people[0].id,
        "installed": connection.connected,
        "install_url": link,
    }


async def download(request: web.Request) -> web.Response:
    stored = request.app[RELAY].fake.files.get(request.match_info["file_id"])
    if stored is None or stored.content is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=stored.content,
        content_type="application/octet-stream",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.name, safe='')}",
        },
    )


# ---- intents: what the person at the page does ---------------------------------------------

Intent = Callable[[Relay, str, dict[str, Any]], Awaitable[Outcome]]


def _intent(handler: Intent) -> Handler:
    """JSON only: a cross-site form cannot send it without a preflight this server refuses."""

    async def handle(request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send JSON")
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="not JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="send a JSON object")
        user = _person(body.get("user"))
        outcome = await handler(request.app[RELAY], user, body)
        return web.json_response(outcome.as_dict())

    return handle


async def _command(relay: Relay, user: str, body: dict[str, Any]) -> Outcome:
    channel = _text(body, "channel")
    if channel not in _team(user).channels:
        raise web.HTTPBadRequest(text="unknown channel")
    return await relay.command(user, channel, _text(body, "text"))


async def _action(relay: Relay, user: str, body: dict[str, Any]) -> Outcome:
    channel = _text(body, "channel") or None
    if channel is not None and channel not in (*_team(user).channels, dm_channel(user)):
        raise web.HTTPBadRequest(text="unknown channel")
    return await relay.click(
        user,
        block_id=_text(body, "block_id"),
        action_id=_text(body, "action_id"),
        value=_text(body, "value"),
        channel=channel,
        ts=_text(body, "ts") or None,
        view_id=_text(body, "view_id") or None,
    )


async def _submit(relay: Relay, user: str, body: dict[str, Any]) -> Outcome:
    raw = body.get("values")
    if not isinstance(raw, dict):
        raise web.HTTPBadRequest(text="values must be an object")
    values = {str(k): v for k, v in raw.items() if isinstance(v, str)}
    return await relay.submit(user, _text(body, "view_id"), values)


async def _close(relay: Relay, _user: str, body: dict[str, Any]) -> Outcome:
    relay.close(_text(body, "view_id"))
    return Outcome(True)


async def _home(relay: Relay, user: str, _body: dict[str, Any]) -> Outcome:
    return await relay.open_home(user)


INTENTS: dict[str, Intent] = {
    "command": _command,
    "action": _action,
    "submit": _submit,
    "close": _close,
    "home": _home,
}


def _person(user: Any) -> str:
    if user not in {p.id for p in seed.EVERYONE}:
        raise web.HTTPBadRequest(text="choose one of the sandbox's people")
    return str(user)


def _team(user: str) -> seed.SlackTeam:
    team = seed.team_of(user)
    assert team is not None, "a person of the sandbox (checked by _person)"
    return team


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str) or len(value) > 4000:
        raise web.HTTPBadRequest(text=f"{key} must be a string")
    return value

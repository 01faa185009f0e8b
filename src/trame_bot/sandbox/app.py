"""`trame-bot serve --sandbox`: the real server, a demo workspace, and a page at `/sandbox` that
stands in for Slack.

The bot is not told it is in a sandbox. It gets a generated token and signing secret, and
`SLACK_API_URL` pointing at a fake Slack Web API mounted in the same server
(`/sandbox/slack/api/`); its replies go there through its real client. The page's intents go
the other way as signed requests to `/slack/events` (see `relay`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from trame_bot.bootstrap import Deps, build_web_app
from trame_bot.config import Settings
from trame_bot.errors import ConfigError
from trame_bot.sandbox import seed
from trame_bot.sandbox.fake_slack import FakeSlack
from trame_bot.sandbox.page import Channel, Page
from trame_bot.sandbox.relay import Outcome, Relay
from trame_bot.sandbox.slack_requests import SlackRequests
from trame_bot.services import workflows

log = logging.getLogger("trame_bot.sandbox")
SLACK_PREFIX = "/sandbox/slack"
STATIC = Path(__file__).parent / "static"
ASSETS = {"sandbox.js": "text/javascript", "sandbox.css": "text/css"}
CHANNELS = [Channel(id, name) for id, name in seed.CHANNEL_NAMES.items()]
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
API_KEY: web.AppKey[str] = web.AppKey("sandbox_api_key", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def loopback_url(host: str, port: int) -> str:
    """How this process reaches itself: the bound address, or loopback for a wildcard."""
    if host in ("", "0.0.0.0", "::", "localhost"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def sandbox_settings(settings: Settings, url: str) -> Settings:
    """A generated bot token and signing secret, and the fake Slack as the Web API."""
    if not settings.is_sqlite:
        raise ConfigError(
            "--sandbox seeds a demo workspace and runs on SQLite only: unset DATABASE_URL "
            "(or point it at a sqlite:/// file)"
        )
    return replace(
        settings,
        slack_bot_token=f"xoxb-sandbox-{secrets.token_hex(12)}",
        slack_signing_secret=secrets.token_hex(20),
        slack_api_url=f"{url}{SLACK_PREFIX}/api/",
    )


def sandbox_app_factory(url: str) -> Callable[[Deps], Awaitable[web.Application]]:
    """For `run_server`: seed, then the bot's server with the sandbox added."""

    async def make(deps: Deps) -> web.Application:
        return await build_sandbox_app(deps, url)

    return make


async def build_sandbox_app(deps: Deps, url: str) -> web.Application:
    """The server `build_web_app` makes, plus the fake Slack and the page. ``url`` is where
    this server listens, for the bot's client and the relay's requests."""
    token, signing_secret = deps.settings.require_slack()
    if await seed.seed(deps.ctx):
        log.info("sandbox: demo workspace %r created", seed.WORKSPACE)
    api_key = await seed.fresh_api_key(deps.ctx)
    app = build_web_app(deps)
    fake = FakeSlack(token)
    for person in seed.PEOPLE:
        fake.add_user(person.id, name=person.name.lower(), real_name=person.name)
    app[DEPS] = deps
    app[API_KEY] = api_key

    async def relay(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[RELAY] = Relay(
                fake,
                SlackRequests(signing_secret),
                events_url=f"{url}/slack/events",
                fake_url=f"{url}{SLACK_PREFIX}",
                session=session,
            )
            app[PAGE] = Page(fake, app[RELAY], CHANNELS)
            yield

    app.cleanup_ctx.append(relay)
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
    user = _person(request.query.get("user") or seed.PEOPLE[0].id)
    ctx = request.app[DEPS].ctx
    found = await workflows.list_workflows(ctx, seed.WORKSPACE)
    body = request.app[PAGE].state(user)
    body["engine"] = {
        "api_key": request.app[API_KEY],
        "workspace": seed.WORKSPACE,
        "workflows": [
            {
                "key": w.key,
                "name": w.name,
                "status": w.status.value,
                "triggers": [t.key for t in w.triggers],
            }
            for w in found
        ],
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


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
    if channel not in seed.CHANNEL_NAMES:
        raise web.HTTPBadRequest(text="unknown channel")
    return await relay.command(user, channel, _text(body, "text"))


async def _action(relay: Relay, user: str, body: dict[str, Any]) -> Outcome:
    return await relay.click(
        user,
        block_id=_text(body, "block_id"),
        action_id=_text(body, "action_id"),
        value=_text(body, "value"),
        channel=_text(body, "channel") or None,
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
    if user not in {p.id for p in seed.PEOPLE}:
        raise web.HTTPBadRequest(text="choose one of the sandbox's people")
    return str(user)


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str) or len(value) > 4000:
        raise web.HTTPBadRequest(text=f"{key} must be a string")
    return value

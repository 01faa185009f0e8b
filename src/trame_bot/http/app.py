"""One aiohttp application: `/slack/events` (Bolt), `/api/v1` (the engine), `/healthz`,
`/readyz`, and the background outbox worker started and stopped with it (unless it runs in a
process of its own: `trame_bot.delivery`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from trame_bot.delivery import delivering
from trame_bot.errors import Unavailable
from trame_bot.http.api import build_api
from trame_bot.http.pulse import Pulse
from trame_bot.metrics import Metrics
from trame_bot.services import health
from trame_bot.services.context import Context
from trame_bot.services.outbox import Sender
from trame_bot.slack import bodies, oauth
from trame_bot.slack.client import SlackConnections

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
"""Slack's payloads are far smaller; anything bigger is refused before it is read."""

BOLT: web.AppKey[AsyncApp] = web.AppKey("bolt", AsyncApp)
CONTEXT: web.AppKey[Context] = web.AppKey("context", Context)


def build_web_app(
    ctx: Context,
    bolt: AsyncApp,
    senders: Mapping[str, Sender],
    metrics: Metrics,
    connections: SlackConnections | None = None,
    *,
    backlog_limit: timedelta = timedelta(minutes=5),
    outbox: bool = True,
) -> web.Application:
    """`senders` deliver outbox rows (Slack; webhooks are added by `delivering`), here unless
    `outbox` is False (`trame-bot outbox` delivers them). `connections`: the Slack clients'
    pool, open while the server runs."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_measured(metrics)])
    app[BOLT] = bolt
    app[CONTEXT] = ctx
    pulse = Pulse()
    ctx.db.on_commit(pulse.fire)
    app.router.add_post("/slack/events", slack_events)
    if bolt.oauth_flow is not None:
        # Distributed mode: the install link's page and Slack's OAuth callback (one-workspace
        # mode has neither: 404).
        app.router.add_get(bolt.oauth_flow.install_path, slack_oauth)
        app.router.add_get(bolt.oauth_flow.redirect_uri_path, slack_oauth)
    app.router.add_get("/healthz", healthz)

    async def readyz(_request: web.Request) -> web.Response:
        try:
            report = await health.readiness(ctx, backlog_limit)
        except Unavailable as exc:
            return web.json_response(
                {"status": "unavailable", "reason": exc.message},
                status=503,
                headers={"Retry-After": "5"},
            )
        return web.json_response(report.as_dict(), status=200 if report.ready else 503)

    app.router.add_get("/readyz", readyz)

    async def metrics_page(_request: web.Request) -> web.Response:
        try:
            gauges = await health.gauges(ctx)
        except Unavailable:
            gauges = {}
        return web.Response(
            body=metrics.exposition(gauges), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_get("/metrics", metrics_page)
    app.add_subapp("/api/v1", build_api(ctx, pulse))
    if connections is not None:
        app.cleanup_ctx.append(lambda _app: connections.opened())
    if outbox:
        # After the connections: stopped before they close.
        app.cleanup_ctx.append(lambda _app: delivering(ctx, senders))
    return app


def _measured(metrics: Metrics) -> Any:
    """Counts every request by route and outcome and times it; /slack/events times the ack."""

    @web.middleware
    async def measure(request: web.Request, handler: Any) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response: web.StreamResponse = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unmatched"
            outcome = f"{status // 100}xx"
            metrics.requests.labels(route=name, method=request.method, outcome=outcome).inc()
            metrics.latency.labels(route=name).observe(elapsed)
            if request.path == "/slack/events":
                metrics.ack.observe(elapsed)

    return measure


async def slack_events(request: web.Request) -> web.Response:
    """Bolt behind our own edge: a body Bolt cannot even parse (it parses before it checks the
    signature) or route is a bad request, never a 500."""
    raw = await request.read()
    try:
        bolt_request = bodies.bolt_request(
            raw.decode("utf-8"), query=request.query_string, headers=dict(request.headers)
        )
        bolt_response = await request.app[BOLT].async_dispatch(bolt_request)
    except Exception as exc:  # malformed input: Slack never sends it, so nobody waits on it
        log.info("refused a malformed Slack request: %s", type(exc).__name__)
        return web.json_response({"error": "invalid request"}, status=400)
    if bolt_response.status >= 500:
        # Our listeners answer every error themselves; Bolt fails on its own only when a
        # payload lacks what every Slack payload has (a user, a team).
        log.info("refused a Slack request Bolt could not handle (%s)", bolt_response.status)
        return web.json_response({"error": "invalid request"}, status=400)
    return await to_aiohttp_response(bolt_response)


async def slack_oauth(request: web.Request) -> web.Response:
    """Bolt's OAuth flow behind our edge: it reads the query and the state cookie and answers
    with a redirect or a page that says why an install was refused."""
    flow = request.app[BOLT].oauth_flow
    assert flow is not None  # only mounted with one
    headers: dict[str, str | Sequence[str]] = {
        name: request.headers.getall(name) for name in request.headers
    }
    bolt_request = AsyncBoltRequest(body="", query=request.query_string, headers=headers)
    if request.path == flow.install_path:
        return await oauth.web_response(await flow.handle_installation(bolt_request))
    return await oauth.web_response(await flow.handle_callback(bolt_request))


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})

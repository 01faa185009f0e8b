"""`trame-bot serve` (HTTP for Slack and the engine, with the jobs and the outbox),
`trame-bot scheduler` (the jobs alone) and `trame-bot outbox` (the deliveries alone), each
stopping gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import timedelta
from typing import Any

import click
from aiohttp import web

from trame_bot import jobs
from trame_bot.bootstrap import Deps, build, build_slack, build_web_app
from trame_bot.cli.app import cli
from trame_bot.config import Settings, load_settings
from trame_bot.delivery import ALONE_POLL, delivering
from trame_bot.domain.values import parse_duration
from trame_bot.errors import ConfigError, SchemaNotReady, Unavailable
from trame_bot.heap import freeze_startup_heap
from trame_bot.jobs import Schedule
from trame_bot.logs import configure_logging
from trame_bot.services.sweep import SweepSettings
from trame_bot.store.migrate import check_schema, upgrade_async

log = logging.getLogger("trame_bot.server")
SHUTDOWN_GRACE = 10.0
"""Seconds in-flight requests get after SIGTERM; with the outbox worker's 8 s the process is
gone well within the 30 s platforms allow before SIGKILL."""


def _duration(_ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    return parse_duration(value, param.name or "interval")


def schedule_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--sweep-every",
                default="5m",
                show_default=True,
                callback=_duration,
                help="Health sweep interval.",
            ),
            click.option(
                "--expiry-window",
                default="3d",
                show_default=True,
                callback=_duration,
                help="Flag credentials expiring within this.",
            ),
            click.option(
                "--stale-after",
                default="24h",
                show_default=True,
                callback=_duration,
                help="Flag connectors silent for this long.",
            ),
            click.option(
                "--probe-timeout",
                default=10.0,
                show_default=True,
                type=click.FloatRange(0.1, 120),
                help="Seconds a health URL may take.",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def _schedule(
    sweep_every: timedelta, expiry_window: timedelta, stale_after: timedelta, probe_timeout: float
) -> Schedule:
    return Schedule(
        sweep_every=sweep_every,
        probe_timeout=probe_timeout,
        sweep=SweepSettings(expiry_window=expiry_window, stale_after=stale_after),
    )


@cli.command()
@click.option("--host", help="Interface to listen on (default: 0.0.0.0; 127.0.0.1 with --sandbox).")
@click.option("--port", type=int, help="Port (default: $PORT or 3000).")
@click.option(
    "--scheduler/--no-scheduler",
    default=True,
    show_default=True,
    help="Run the scheduled jobs here too.",
)
@click.option(
    "--outbox/--no-outbox",
    default=True,
    show_default=True,
    help="Deliver the outbox (Slack messages, webhooks) here too; with --no-outbox, run "
    "`trame-bot outbox` beside it.",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Try it without Slack: a demo workspace and, at /sandbox, a page that stands in "
    "for Slack (SQLite only; no Slack credentials needed).",
)
@schedule_options
def serve(
    host: str | None,
    port: int | None,
    scheduler: bool,
    outbox: bool,
    sandbox: bool,
    **schedule: Any,
) -> None:
    """Run the server: /slack/events, /api/v1, /healthz, /readyz, the outbox worker and,
    unless --no-scheduler, the scheduled jobs; with SLACK_APP_TOKEN, Slack's requests also
    arrive over Socket Mode."""
    # Schema: a SQLite file (and so every --sandbox) is migrated on start, as a local install
    # has no release step; a PostgreSQL database is migrated once per deploy by the release
    # step (`trame-bot db upgrade`), so here it is only checked, and a missing or outdated
    # schema stops the server at once with that command as the fix.
    settings = load_settings()
    port = port or settings.port
    make_app = None
    ignored_app_token = False
    if sandbox:
        from trame_bot.sandbox.app import loopback_url, sandbox_app_factory, sandbox_settings

        host = host or "127.0.0.1"
        url = loopback_url(host, port)  # where the bot's client and the page's relay reach it
        # The page posts to /slack/events: the sandbox's Slack has no app to connect to.
        ignored_app_token = settings.slack_app_token is not None
        settings = replace(sandbox_settings(settings, url), slack_app_token=None)
        make_app = sandbox_app_factory(url)
    else:
        try:
            settings.slack_mode()
        except ConfigError as exc:
            raise ConfigError(
                f"{exc.message} (to try trame-bot without Slack: trame-bot serve --sandbox)"
            ) from None
    configure_logging(settings)
    if ignored_app_token:
        log.info("SLACK_APP_TOKEN is ignored with --sandbox: Socket Mode stays off")
    asyncio.run(
        run_server(
            settings,
            host or "0.0.0.0",
            port,
            _schedule(**schedule) if scheduler else None,
            make_app=make_app,
            outbox=outbox,
        )
    )


@cli.command("scheduler")
@schedule_options
def scheduler_command(**schedule: Any) -> None:
    """Run only the scheduled jobs (the Procfile's clock process). Any number may run at once."""
    # It never migrates, not even SQLite: it checks the schema and refuses to start on one
    # that is missing or outdated (`trame-bot db upgrade`, or a first `serve`, fixes it).
    settings = load_settings()
    configure_logging(settings)
    asyncio.run(run_scheduler(settings, _schedule(**schedule)))


@cli.command("outbox")
@click.option(
    "--poll",
    default=ALONE_POLL,
    show_default=True,
    type=click.FloatRange(0.05, 60),
    help="Seconds between looks for messages to send.",
)
def outbox_command(poll: float) -> None:
    """Deliver the outbox alone (Slack messages and webhooks), beside web processes that run
    `serve --no-outbox`. Any number may run at once: each message is sent by one."""
    settings = load_settings()
    settings.slack_mode()  # refuse to start without Slack credentials, as `serve` does
    configure_logging(settings)
    asyncio.run(run_outbox(settings, poll))


async def run_outbox(settings: Settings, poll: float) -> None:
    deps = build(settings)
    try:
        await _check_schema(deps)
        slack = build_slack(deps)
        async with slack.connections.opened(), delivering(deps.ctx, slack.senders, poll=poll):
            log.info("outbox worker running")
            await _until_signalled()
    finally:
        await deps.close()


async def run_scheduler(settings: Settings, schedule: Schedule) -> None:
    deps = build(settings)
    try:
        await _check_schema(deps)
        async with jobs.running(deps.ctx, schedule, deps.metrics):
            log.info("scheduler running")
            await _until_signalled()
    finally:
        await deps.close()


async def _check_schema(deps: Deps) -> None:
    """Refuse to start on a schema this code cannot use (`SchemaNotReady` goes up to the
    command line: one line, exit 2). A database that does not answer yet is no reason to
    refuse: /readyz and the jobs wait for it, as they do when it goes away later."""
    try:
        await check_schema(deps.db)
    except SchemaNotReady:
        raise
    except Unavailable:
        log.warning("the database does not answer; starting without checking its schema")


async def _until_signalled() -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()


async def run_server(
    settings: Settings,
    host: str,
    port: int,
    schedule: Schedule | None = None,
    *,
    make_app: Callable[[Deps], Awaitable[web.Application]] | None = None,
    outbox: bool = True,
) -> None:
    """``make_app`` builds the application instead of `build_web_app` (the sandbox's, which
    always delivers its outbox)."""
    if settings.is_sqlite:
        # A local SQLite file is migrated on start; PostgreSQL deployments migrate in the
        # Procfile's release step, once, not in every web process.
        await upgrade_async(settings.database_url)
    deps = build(settings)
    try:
        await _check_schema(deps)
    except BaseException:
        await deps.close()
        raise
    app = await make_app(deps) if make_app is not None else build_web_app(deps, outbox=outbox)
    if settings.slack_app_token:
        from trame_bot.slack.socket import attach

        attach(app, settings)  # connects in the background once the server has started
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_GRACE, access_log=None)
    await runner.setup()
    freeze_startup_heap()
    await web.TCPSite(runner, host, port).start()
    log.info("trame-bot listening on http://%s:%s", host, port)
    try:
        async with AsyncExitStack() as stack:
            if schedule is not None:
                await stack.enter_async_context(jobs.running(deps.ctx, schedule, deps.metrics))
            await _until_signalled()
            log.info("shutting down: finishing in-flight requests")
    finally:
        await runner.cleanup()
        await deps.close()

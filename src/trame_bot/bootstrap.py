"""The composition root: every entry point (server, scheduler, CLI) and every test builds its
dependencies here, once, and hands them down. Nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trame_bot.clock import Clock, SystemClock
from trame_bot.config import OneWorkspace, Settings, load_settings
from trame_bot.metrics import Metrics
from trame_bot.services.context import Context
from trame_bot.store.database import Database
from trame_bot.vault import Vault

if TYPE_CHECKING:
    from aiohttp import web

    from trame_bot.config import SlackMode
    from trame_bot.services.outbox import Sender
    from trame_bot.slack.client import SlackConnections


@dataclass
class Deps:
    settings: Settings
    db: Database
    clock: Clock
    metrics: Metrics = field(default_factory=Metrics)
    ctx: Context = field(init=False)

    def __post_init__(self) -> None:
        keys = self.settings.encryption_keys
        # The client id or secret is what `Settings.slack_mode()` reads as distribution by OAuth.
        distributed = bool(self.settings.slack_client_id or self.settings.slack_client_secret)
        self.ctx = Context(
            db=self.db,
            clock=self.clock,
            vault=Vault(keys) if keys else None,
            distributed=distributed,
        )

    async def close(self) -> None:
        await self.db.dispose()


def build(settings: Settings | None = None, *, clock: Clock | None = None) -> Deps:
    settings = settings or load_settings()
    return Deps(settings=settings, db=Database(settings.database_url), clock=clock or SystemClock())


def build_web_app(deps: Deps, *, outbox: bool = True) -> web.Application:
    """The server: Slack's request URL, the engine's API, health endpoints, and (unless
    `outbox` is False: `trame-bot outbox` runs it) the outbox worker that sends Slack messages
    and webhooks. Needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET, or the OAuth settings."""
    # Imported here so that CLI commands, which never serve, do not load Slack and aiohttp.
    from trame_bot.http.app import build_web_app as web_app
    from trame_bot.slack.app import build_bolt_app
    from trame_bot.slack.client import build_client

    slack = build_slack(deps)
    # One workspace: the client carries the bot token. Distributed: Bolt sets each team's.
    token = slack.mode.bot_token if isinstance(slack.mode, OneWorkspace) else ""
    client = build_client(
        token,
        deps.settings.slack_api_url,
        timeout=deps.settings.slack_timeout,
        connections=slack.connections,
    )
    bolt = build_bolt_app(deps.ctx, slack.mode, client)
    return web_app(deps.ctx, bolt, slack.senders, deps.metrics, slack.connections, outbox=outbox)


@dataclass(frozen=True)
class SlackParts:
    """What every process that talks to Slack shares: its mode, its clients' connection pool
    (open while the process serves), and the outbox's Slack senders."""

    mode: SlackMode
    connections: SlackConnections
    senders: dict[str, Sender]


def build_slack(deps: Deps) -> SlackParts:
    from trame_bot.slack.client import SlackConnections
    from trame_bot.slack.senders import SlackSenders
    from trame_bot.slack.team_clients import team_clients

    mode = deps.settings.slack_mode()
    connections = SlackConnections()
    # Each outbox message goes with its workspace's team's token, looked up when it is sent.
    teams = team_clients(
        deps.ctx,
        mode,
        deps.settings.slack_api_url,
        timeout=deps.settings.slack_timeout,
        connections=connections,
    )
    return SlackParts(mode, connections, SlackSenders(deps.ctx, teams).registry())

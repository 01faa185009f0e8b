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


def build_web_app(deps: Deps) -> web.Application:
    """The server: Slack's request URL, the engine's API, health endpoints, and the outbox
    worker that sends Slack messages and webhooks. Needs SLACK_BOT_TOKEN and
    SLACK_SIGNING_SECRET."""
    # Imported here so that CLI commands, which never serve, do not load Slack and aiohttp.
    from trame_bot.http.app import build_web_app as web_app
    from trame_bot.slack.app import build_bolt_app
    from trame_bot.slack.client import SlackConnections, build_client
    from trame_bot.slack.senders import SlackSenders
    from trame_bot.slack.team_clients import team_clients

    mode = deps.settings.slack_mode()
    # One workspace: the client carries the bot token. Distributed: Bolt sets each team's.
    token = mode.bot_token if isinstance(mode, OneWorkspace) else ""
    api_url, timeout = deps.settings.slack_api_url, deps.settings.slack_timeout
    connections = SlackConnections()
    client = build_client(token, api_url, timeout=timeout, connections=connections)
    # Each outbox message goes with its workspace's team's token, looked up when it is sent.
    teams = team_clients(deps.ctx, mode, api_url, timeout=timeout, connections=connections)
    senders = SlackSenders(deps.ctx, teams).registry()
    bolt = build_bolt_app(deps.ctx, mode, client)
    return web_app(deps.ctx, bolt, senders, deps.metrics, connections)

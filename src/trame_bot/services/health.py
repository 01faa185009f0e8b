"""Readiness: the database answers and the outbox is not falling behind; which workspaces'
Slack is disconnected (said, but not a reason to be unready)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from trame_bot.services import installations
from trame_bot.services.context import Context
from trame_bot.services.outbox import installed_only
from trame_bot.store import connectors as connector_store
from trame_bot.store import outbox as outbox_store
from trame_bot.store import runs as run_store


@dataclass(frozen=True)
class Readiness:
    ready: bool
    backlog: int
    oldest_age_seconds: float
    reason: str | None
    slack_disconnected: list[str] = field(default_factory=list)
    """"acme (app_uninstalled since 2025-05-01 10:00 UTC)", one per workspace."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "unavailable",
            "outbox_backlog": self.backlog,
            "outbox_oldest_age_seconds": round(self.oldest_age_seconds, 1),
            "reason": self.reason,
            "slack_disconnected": self.slack_disconnected,
        }


async def readiness(ctx: Context, backlog_limit: timedelta) -> Readiness:
    """Held messages (a workspace's Slack not installed or disconnected) are neither backlog
    nor a reason to be unready: this server is fine and serves every other workspace and the
    engine's API; answering 503 would take it out of the load balancer for all of them over
    one client's Slack. The disconnected workspaces are named in the detail instead."""
    async with ctx.db.reading() as session:
        backlog, oldest = await outbox_store.backlog(session, installed_only=installed_only(ctx))
    disconnected = await _disconnected(ctx)
    age = _age(ctx.clock.now(), oldest)
    if age > backlog_limit.total_seconds():
        return Readiness(
            False,
            backlog,
            age,
            f"outbox messages have waited {age:.0f} s (limit {backlog_limit.total_seconds():.0f} s)",
            disconnected,
        )
    return Readiness(True, backlog, age, None, disconnected)


async def _disconnected(ctx: Context) -> list[str]:
    if not ctx.distributed:
        return []  # one configured token: no installation to lose
    return [
        f"{c.workspace} ({c.reason} since {c.since:%Y-%m-%d %H:%M} UTC)"
        for c in await installations.slack_connections(ctx)
        if c.state == "disconnected"
    ]


def _age(now: datetime, oldest: datetime | None) -> float:
    return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())


async def gauges(ctx: Context) -> dict[str, tuple[str, float]]:
    """Point-in-time figures for /metrics. The outbox figures leave held messages out, as
    readiness does: `trame_outbox_held` counts them."""
    now = ctx.clock.now()
    async with ctx.db.reading() as session:
        backlog, oldest = await outbox_store.backlog(session, installed_only=installed_only(ctx))
        held = await outbox_store.held(session, installed_only(ctx))
        pending = await run_store.count_pending(session)
        unhealthy = await connector_store.count_unhealthy(session)
    disconnected = await _disconnected(ctx)
    return {
        "trame_outbox_backlog": ("Outbox messages waiting to be delivered.", float(backlog)),
        "trame_outbox_oldest_age_seconds": (
            "Age of the oldest undelivered outbox message.",
            _age(now, oldest),
        ),
        "trame_outbox_held": (
            "Slack messages held until their workspace's Slack is installed or reinstalled.",
            float(held),
        ),
        "trame_pending_runs": ("Runs waiting for approval.", float(pending)),
        "trame_connectors_needing_attention": ("Connectors not healthy.", float(unhealthy)),
        "trame_slack_disconnected_workspaces": (
            "Workspaces whose Slack team uninstalled the app or revoked its token; their Slack "
            "messages are held until a reinstall.",
            float(len(disconnected)),
        ),
    }

"""Readiness: the database answers and the outbox is not falling behind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from trame_bot.services.context import Context
from trame_bot.store import connectors as connector_store
from trame_bot.store import outbox as outbox_store
from trame_bot.store import runs as run_store


@dataclass(frozen=True)
class Readiness:
    ready: bool
    backlog: int
    oldest_age_seconds: float
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "unavailable",
            "outbox_backlog": self.backlog,
            "outbox_oldest_age_seconds": round(self.oldest_age_seconds, 1),
            "reason": self.reason,
        }


async def readiness(ctx: Context, backlog_limit: timedelta) -> Readiness:
    async with ctx.db.reading() as session:
        backlog, oldest = await outbox_store.backlog(session)
    age = _age(ctx.clock.now(), oldest)
    if age > backlog_limit.total_seconds():
        return Readiness(
            False,
            backlog,
            age,
            f"outbox messages have waited {age:.0f} s (limit {backlog_limit.total_seconds():.0f} s)",
        )
    return Readiness(True, backlog, age, None)


def _age(now: datetime, oldest: datetime | None) -> float:
    return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())


async def gauges(ctx: Context) -> dict[str, tuple[str, float]]:
    """Point-in-time figures for /metrics."""
    now = ctx.clock.now()
    async with ctx.db.reading() as session:
        backlog, oldest = await outbox_store.backlog(session)
        pending = await run_store.count_pending(session)
        unhealthy = await connector_store.count_unhealthy(session)
    return {
        "trame_outbox_backlog": ("Outbox messages waiting to be delivered.", float(backlog)),
        "trame_outbox_oldest_age_seconds": (
            "Age of the oldest undelivered outbox message.",
            _age(now, oldest),
        ),
        "trame_pending_runs": ("Runs waiting for approval.", float(pending)),
        "trame_connectors_needing_attention": ("Connectors not healthy.", float(unhealthy)),
    }

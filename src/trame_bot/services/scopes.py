"""Least privilege across a workspace: its connectors' grants against what its workflows' steps
need (the rule: domain/scopes.py), and the pending cards a widened grant must flag."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain import scopes
from trame_bot.services.context import Context
from trame_bot.services.outbox import Kind, enqueue
from trame_bot.store import connectors as connector_store
from trame_bot.store import lookups
from trame_bot.store import runs as run_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.models import Connector, Workspace


@dataclass(frozen=True)
class Granted:
    connector: Connector
    over_privileged: tuple[str, ...]
    """Its scope words no step of any workflow of the workspace needs."""


async def over_privileged_in(
    session: AsyncSession, workspace_id: int, connectors: Sequence[Connector]
) -> dict[str, tuple[str, ...]]:
    """Per connector key with something to flag, the grants no step of any workflow of the
    workspace needs, whatever its status (a paused one comes back). The database reads the
    steps for the (connector, access) pairs they use (`store.lookups.step_uses_in`)."""
    return scopes.over_privileged_in(
        {c.key: c.scopes for c in connectors}, await lookups.step_uses_in(session, workspace_id)
    )


async def list_connectors(ctx: Context, key: str) -> list[Granted]:
    """The workspace's connectors, each with the grants no step needs."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        connectors = await connector_store.list_for(session, workspace.id)
        flagged = await over_privileged_in(session, workspace.id, connectors)
    return [Granted(c, flagged.get(c.key, ())) for c in connectors]


async def flag_pending_cards(
    session: AsyncSession, ctx: Context, workspace: Workspace, connector_key: str
) -> int:
    """Re-render, after commit, the cards of pending runs with a step through the connector:
    they show that its scopes were widened since the run was requested. Returns how many."""
    flagged = 0
    for run in await run_store.pending_in(session, workspace.id):
        if any(step.get("connector") == connector_key for step in run.plan):
            await enqueue(session, ctx, workspace, Kind.SLACK_CARD, run_id=run.id)
            flagged += 1
    return flagged

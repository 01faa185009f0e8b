"""The daily connector-health digest: once per workspace and local date, late at most once."""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role
from trame_bot.domain.schedule import digest_due
from trame_bot.domain.values import counted
from trame_bot.domain.views import Overview
from trame_bot.services.access import require
from trame_bot.services.context import Context
from trame_bot.services.outbox import Kind, enqueue
from trame_bot.services.overview import overview_in
from trame_bot.store import audit as audit_store
from trame_bot.store import digests as store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.models import Workspace

log = logging.getLogger(__name__)
MAX_CONNECTORS = 100
MAX_PENDING = 50


async def send_due_digests(ctx: Context) -> int:
    """Send every digest whose local time has come and that nobody has sent yet; a workspace's
    first digest is the first one scheduled after it was created."""
    now = ctx.clock.now()
    due = []
    async with ctx.db.reading() as session:
        for ws in await workspace_store.list_all(session):
            day, moment = digest_due(now, ws.timezone, ws.digest_time)
            if moment >= ws.created_at and not await store.sent(session, ws.id, day.isoformat()):
                due.append((ws.id, day.isoformat()))
    sent = 0
    for workspace_id, local_date in due:
        try:
            async with ctx.db.transaction() as session:
                await store.claim(session, workspace_id, local_date, now)
                workspace = await workspace_store.by_id(session, workspace_id)
                await _post(session, ctx, workspace, local_date, Actor.system())
            sent += 1
        except IntegrityError:
            log.info(
                "digest of workspace %s for %s already sent by another process",
                workspace_id,
                local_date,
            )
    return sent


async def send_digest_now(ctx: Context, key: str, actor: Actor) -> None:
    """`/trame digest`: an extra digest now; the daily one still goes out at its time."""
    async with ctx.db.transaction() as session:
        workspace = await workspace_store.get(session, key)
        await require(session, workspace, actor, Role.ADMIN, "posting the digest")
        local_date = ctx.clock.now().astimezone(ZoneInfo(workspace.timezone)).date().isoformat()
        await _post(session, ctx, workspace, local_date, actor)


async def _post(
    session: AsyncSession, ctx: Context, workspace: Workspace, local_date: str, actor: Actor
) -> None:
    view = await overview_in(session, workspace)
    data = digest_data(view, local_date)
    unhealthy = int(data["unhealthy_total"])
    await enqueue(
        session,
        ctx,
        workspace,
        Kind.SLACK_POST,
        channel=workspace.alerts_channel,
        event="digest",
        data=data,
    )
    await audit_store.append(
        session,
        workspace,
        at=ctx.clock.now(),
        actor=actor.audit_name,
        action="digest.sent",
        entity_type="workspace",
        entity_id=workspace.key,
        summary=f"digest for {local_date}: {counted(unhealthy, 'connector')} {'needs' if unhealthy == 1 else 'need'} attention, "
        f"{counted(data['pending_total'], 'approval')} pending",
        data={
            "date": local_date,
            "unhealthy": data["unhealthy_total"],
            "pending": data["pending_total"],
            "audit_head": view.audit_head,
        },
    )


def digest_data(view: Overview, local_date: str) -> dict[str, Any]:
    """A snapshot for the message, capped: 2,000 unhealthy connectors still make one message."""
    affected: dict[str, list[dict[str, str]]] = {}
    for workflow in view.workflows:
        for key in workflow.unhealthy_connectors:
            affected.setdefault(key, []).append(
                {"name": workflow.name, "status": workflow.status.value}
            )
    unhealthy = sorted(view.unhealthy, key=lambda c: c.since)
    over_privileged = [c for c in view.connectors if c.over_privileged]
    return {
        "workspace": view.workspace_name,
        "date": local_date,
        "unhealthy_total": len(unhealthy),
        "unhealthy": [
            {
                "key": c.key,
                "toolkit": c.toolkit,
                "health": c.health.value,
                "since": c.since.isoformat(),
                "error": c.last_error,
                "workflows": affected.get(c.key, [])[:10],
            }
            for c in unhealthy[:MAX_CONNECTORS]
        ],
        "pending_total": len(view.pending),
        "pending": [
            {
                "workflow": p.workflow_name,
                "requested_at": p.requested_at.isoformat(),
                "channel": p.channel,
            }
            for p in view.pending[:MAX_PENDING]
        ],
        "audit_head": view.audit_head,
        "audit_events": view.audit_events,
        "over_privileged_total": len(over_privileged),
        "over_privileged": [
            {"key": c.key, "scopes": list(c.over_privileged[:10])}
            for c in over_privileged[:MAX_CONNECTORS]
        ],
    }

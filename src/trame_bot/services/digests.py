"""The daily digest: connector health and approvals (waiting, declined, paused), once per
workspace and local date, late at most once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, Status, Verdict
from trame_bot.domain.schedule import digest_due
from trame_bot.domain.values import counted
from trame_bot.domain.views import ApprovalsDigest, DeclineView, Overview, PausedView
from trame_bot.services.access import require
from trame_bot.services.context import Context
from trame_bot.services.outbox import Kind, enqueue
from trame_bot.services.overview import overview_in
from trame_bot.store import audit as audit_store
from trame_bot.store import digests as store
from trame_bot.store import runs as run_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.models import Workspace

log = logging.getLogger(__name__)
MAX_CONNECTORS = 100
MAX_PENDING = 50
MAX_DECLINED = 50
MAX_PAUSED = 50
FIRST_DIGEST_WINDOW = timedelta(hours=24)
"""A workspace's first digest reports the declines of the last day."""


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
    approvals = await approvals_in(session, workspace, view, ctx.clock.now())
    data = digest_data(view, local_date, approvals, ctx.clock.now())
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


async def approvals_in(
    session: AsyncSession, workspace: Workspace, view: Overview, now: datetime
) -> ApprovalsDigest:
    """Declines since the previous daily digest (the last day for the first one) and the paused
    workflows with when they were paused. The pause time is the workflow's last
    `workflow.status_changed` audit event, not `updated_at`, which an edit while paused moves."""
    since = await store.last_sent_before(session, workspace.id, now) or now - FIRST_DIGEST_WINDOW
    total, declined = await run_store.declined_since(session, workspace.id, since, MAX_DECLINED)
    paused = [w for w in view.workflows if w.status is Status.PAUSED]
    changed = await audit_store.last_status_changes(session, workspace.id, [w.key for w in paused])
    return ApprovalsDigest(
        since=since,
        declined_total=total,
        declined=tuple(
            DeclineView(
                workflow_name=name,
                requested_by=run.requested_by,
                declined_by=run.decided_by,
                declined_at=run.decided_at or now,
                category=vote.category if vote and vote.verdict is Verdict.DECLINE else None,
                reason=run.reason,
            )
            for run, name, vote in declined
        ),
        paused=tuple(
            sorted(
                (PausedView(w.key, w.name, changed.get(w.key, now)) for w in paused),
                key=lambda p: p.paused_at,
            )
        ),
    )


def digest_data(
    view: Overview,
    local_date: str,
    approvals: ApprovalsDigest | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
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
                "requested_by": p.requested_by,
                "requested_at": p.requested_at.isoformat(),
                "channel": p.channel,
                "slack_ts": p.slack_ts,
            }
            for p in view.pending[:MAX_PENDING]
        ],
        "at": now.isoformat() if now else None,
        "audit_head": view.audit_head,
        "audit_events": view.audit_events,
        "over_privileged_total": len(over_privileged),
        "over_privileged": [
            {"key": c.key, "scopes": list(c.over_privileged[:10])}
            for c in over_privileged[:MAX_CONNECTORS]
        ],
        **_approvals_data(approvals),
    }


def _approvals_data(approvals: ApprovalsDigest | None) -> dict[str, Any]:
    if approvals is None:
        return {}
    return {
        "declined_since": approvals.since.isoformat(),
        "declined_total": approvals.declined_total,
        "declined": [
            {
                "workflow": d.workflow_name,
                "requested_by": d.requested_by,
                "declined_by": d.declined_by,
                "declined_at": d.declined_at.isoformat(),
                "category": d.category,
                "reason": d.reason[:500] if d.reason else None,
            }
            for d in approvals.declined
        ],
        "paused_total": len(approvals.paused),
        "paused": [
            {"key": p.workflow_key, "name": p.workflow_name, "since": p.paused_at.isoformat()}
            for p in approvals.paused[:MAX_PAUSED]
        ],
    }

"""The read a pilot's record needs (domain/pilot.py), in one query on the audit log."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from trame_bot.domain.enums import Status
from trame_bot.domain.pilot import HEALTH, SAVED
from trame_bot.store.models import AuditEvent, Run, Workflow


async def pilot_events(
    session: AsyncSession, workflow: Workflow, fingerprint: str, connectors: Sequence[str]
) -> Sequence[AuditEvent]:
    """In chain order: the workflow's saves (to find when its version was saved), every event
    of its runs requested in pilot with the plan `fingerprint` (plan and version), and the
    health changes of `connectors` since the workflow was created, with the last one before.

    The workflow's creation bounds the health changes because the version cannot be older,
    and the save time sits in JSON the query cannot read on both databases alike."""
    e = AuditEvent
    runs = select(Run.id).where(
        Run.workflow_id == workflow.id,
        Run.fingerprint == fingerprint,
        Run.workflow_status == Status.PILOT,
    )
    health = and_(e.entity_type == "connector", e.entity_id.in_(connectors), e.action == HEALTH)
    p = aliased(AuditEvent)
    last_before = (
        select(func.max(p.seq))
        .where(
            p.workspace_id == workflow.workspace_id,
            p.entity_type == "connector",
            p.entity_id.in_(connectors),
            p.action == HEALTH,
            p.at < workflow.created_at,
        )
        .group_by(p.entity_id)
    )
    query = (
        select(e)
        .where(
            e.workspace_id == workflow.workspace_id,
            or_(
                and_(
                    e.entity_type == "workflow",
                    e.entity_id == workflow.key,
                    e.action.in_(sorted(SAVED)),
                ),
                and_(e.entity_type == "run", e.entity_id.in_(runs)),
                and_(health, or_(e.at >= workflow.created_at, e.seq.in_(last_before))),
            ),
        )
        .order_by(e.seq)
    )
    return (await session.execute(query)).scalars().all()

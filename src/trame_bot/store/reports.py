"""The reads an incident report needs: its entities' events in a window, their states just
before it, and the span of the chain the window covers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.store.models import AuditEvent, Run

STATE_CHANGES = ("workflow.status_changed", "connector.health_changed")


@dataclass(frozen=True)
class Scope:
    workspace_id: int
    workflow_ids: Sequence[int]
    workflow_keys: Sequence[str]
    connector_keys: Sequence[str]


@dataclass(frozen=True)
class ChainSpan:
    first_seq: int
    last_seq: int

    @property
    def length(self) -> int:
        return self.last_seq - self.first_seq + 1


def _about(scope: Scope, *, runs: bool) -> ColumnElement[bool]:
    """Events of the scope's workflows and connectors and, with `runs`, of their runs."""
    e = AuditEvent
    parts = [
        and_(e.entity_type == "workflow", e.entity_id.in_(scope.workflow_keys)),
        and_(e.entity_type == "connector", e.entity_id.in_(scope.connector_keys)),
    ]
    if runs and scope.workflow_ids:
        run_ids = select(Run.id).where(Run.workflow_id.in_(scope.workflow_ids))
        parts.append(and_(e.entity_type == "run", e.entity_id.in_(run_ids)))
    return or_(false(), *parts)


async def events_in(
    session: AsyncSession, scope: Scope, since: datetime, until: datetime, *, limit: int
) -> Sequence[AuditEvent]:
    """The scope's events in [since, until), oldest first, at most `limit`."""
    query = (
        select(AuditEvent)
        .where(
            AuditEvent.workspace_id == scope.workspace_id,
            AuditEvent.at >= since,
            AuditEvent.at < until,
            _about(scope, runs=True),
        )
        .order_by(AuditEvent.seq)
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()


async def states_before(
    session: AsyncSession, scope: Scope, since: datetime
) -> Sequence[AuditEvent]:
    """Each workflow's and connector's last status or health change before `since`."""
    last = (
        select(func.max(AuditEvent.seq))
        .where(
            AuditEvent.workspace_id == scope.workspace_id,
            AuditEvent.at < since,
            AuditEvent.action.in_(STATE_CHANGES),
            _about(scope, runs=False),
        )
        .group_by(AuditEvent.entity_type, AuditEvent.entity_id)
    )
    query = (
        select(AuditEvent)
        .where(AuditEvent.workspace_id == scope.workspace_id, AuditEvent.seq.in_(last))
        .order_by(AuditEvent.seq)
    )
    return (await session.execute(query)).scalars().all()


async def chain_span(
    session: AsyncSession, workspace_id: int, since: datetime, until: datetime
) -> ChainSpan | None:
    """From the first to the last event of the workspace in [since, until), by position: every
    event between them goes into the export, so it has no gap for `audit verify --file`."""
    query = select(func.min(AuditEvent.seq), func.max(AuditEvent.seq)).where(
        AuditEvent.workspace_id == workspace_id, AuditEvent.at >= since, AuditEvent.at < until
    )
    first, last = (await session.execute(query)).one()
    return None if first is None else ChainSpan(int(first), int(last))

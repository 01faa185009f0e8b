"""The audit log: append and read, nothing else. There is no update or delete here, by design."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, String, case, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.audit_chain import GENESIS_HASH, ChainLink, link_hash
from trame_bot.domain.plan import canonical_json
from trame_bot.store.models import AuditEvent, AuditHead, Workspace


@dataclass(frozen=True)
class AuditFilter:
    entity_type: str | None = None
    entity_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    """A span of the chain by position: an export that `audit verify --file` can follow."""


async def start_chain(session: AsyncSession, workspace: Workspace) -> None:
    session.add(AuditHead(workspace_id=workspace.id, seq=0, hash=GENESIS_HASH))
    await session.flush()


async def append(
    session: AsyncSession,
    workspace: Workspace,
    *,
    at: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    summary: str,
    data: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEvent:
    head = await _locked_head(session, workspace.id)
    link = ChainLink(
        workspace=workspace.key,
        seq=head.seq + 1,
        at=at,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        summary=summary,
        data=canonical_json(data or {}),
        reason=reason,
        prev_hash=head.hash,
    )
    event = AuditEvent(
        workspace_id=workspace.id,
        seq=link.seq,
        at=at,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        summary=summary,
        data=link.data,
        reason=reason,
        prev_hash=link.prev_hash,
        hash=link_hash(link),
    )
    session.add(event)
    head.seq, head.hash = link.seq, event.hash
    # No flush per event: the next query or the commit writes them all in one batch.
    return event


_LOCKED_HEADS = "trame_audit_heads"


async def _locked_head(session: AsyncSession, workspace_id: int) -> AuditHead:
    """The workspace's chain head, locked (`SELECT … FOR UPDATE`) by the first append of this
    transaction and kept for the next ones: the lock serializes appends per workspace until the
    transaction ends, so nobody else can move the head in between."""
    transaction = session.sync_session.get_transaction()
    owner, heads = session.info.get(_LOCKED_HEADS, (None, {}))
    if owner is not transaction:
        heads = {}
        session.info[_LOCKED_HEADS] = (transaction, heads)
    if workspace_id not in heads:
        heads[workspace_id] = (
            await session.execute(
                select(AuditHead).where(AuditHead.workspace_id == workspace_id).with_for_update()
            )
        ).scalar_one()
    head: AuditHead = heads[workspace_id]
    return head


async def head(session: AsyncSession, workspace_id: int) -> AuditHead:
    return (
        await session.execute(select(AuditHead).where(AuditHead.workspace_id == workspace_id))
    ).scalar_one()


async def last_status_changes(
    session: AsyncSession, workspace_id: int, workflow_keys: Sequence[str]
) -> dict[str, datetime]:
    """When each workflow's status last changed: every pause goes through one service that
    writes `workflow.status_changed` (ix_audit_events_entity serves this read)."""
    if not workflow_keys:
        return {}
    rows = await session.execute(
        select(AuditEvent.entity_id, func.max(AuditEvent.at))
        .where(
            AuditEvent.workspace_id == workspace_id,
            AuditEvent.entity_type == "workflow",
            AuditEvent.entity_id.in_(workflow_keys),
            AuditEvent.action == "workflow.status_changed",
        )
        .group_by(AuditEvent.entity_id)
    )
    return {str(key): at for key, at in rows.all()}


def filtered(workspace_id: int, where: AuditFilter) -> Select[AuditEvent]:
    """Matching events as ORM objects: for short lists."""
    return _where(select(AuditEvent), workspace_id, where)


def _where(query: Select[Any], workspace_id: int, where: AuditFilter) -> Select[Any]:
    query = query.where(AuditEvent.workspace_id == workspace_id)
    if where.entity_type is not None:
        query = query.where(AuditEvent.entity_type == where.entity_type)
    if where.entity_id is not None:
        query = query.where(AuditEvent.entity_id == where.entity_id)
    if where.since is not None:
        query = query.where(AuditEvent.at >= where.since)
    if where.until is not None:
        query = query.where(AuditEvent.at < where.until)
    if where.first_seq is not None:
        query = query.where(AuditEvent.seq >= where.first_seq)
    if where.last_seq is not None:
        query = query.where(AuditEvent.seq <= where.last_seq)
    return query


EXPORTED = (
    "seq",
    "at",
    "actor",
    "action",
    "entity_type",
    "entity_id",
    "summary",
    "reason",
    "data",
    "prev_hash",
    "hash",
)
"""The columns `stream_exported` yields, in this order (the export's columns)."""


async def stream_exported(
    session: AsyncSession, workspace_id: int, where: AuditFilter, *, batch: int = 2_000
) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """Matching events oldest first, `batch` at a time, as plain rows straight from the driver
    (no ORM objects, no type conversion), `at` already written by the database as `format_at`
    writes it: exporting or verifying millions of events costs little Python per row. The
    columns are `EXPORTED`."""
    connection = await session.connection()
    table = AuditEvent.__table__.c
    columns = [
        _at_text(connection.dialect.name) if name == "at" else table[name] for name in EXPORTED
    ]
    query = _where(select(*columns), workspace_id, where).order_by(AuditEvent.seq)
    result = await connection.stream(query.execution_options(yield_per=batch))
    async for partition in result.partitions():
        yield partition


def _at_text(dialect: str) -> ColumnElement[str]:
    """`at` as `format_at` writes it (`2026-11-02T09:00:00.000000+00:00`), by the database."""
    at = AuditEvent.__table__.c.at
    if dialect == "postgresql":
        utc = func.timezone("UTC", at)
        return func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"', type_=String()).label("at")
    # SQLite holds naive UTC text, written by `UTCDateTime` as `YYYY-MM-DD HH:MM:SS.ffffff`.
    raw = type_coerce(at, String())
    stored = func.substr(raw, 1, 10, type_=String()) + "T" + func.substr(raw, 12, type_=String())
    other = func.strftime("%Y-%m-%dT%H:%M:%f", raw, type_=String()) + "000"
    return (case((func.length(raw) == 26, stored), else_=other) + "+00:00").label("at")

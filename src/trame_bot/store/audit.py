"""The audit log: append to a workspace's chain, read its head and its events. There is no
update or delete here, by design (nor anywhere: exports are `audit_export`, verify reads are
`audit_verify`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from sqlalchemy import Connection, Select, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from trame_bot.domain.audit_chain import GENESIS_HASH, encoded_hash, encoded_link, format_at
from trame_bot.domain.plan import canonical_json
from trame_bot.store import pending
from trame_bot.store.models import AuditEvent, AuditHead, Workspace, table


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


class ChainOwner(Protocol):
    """A workspace as the chain needs it: an ORM `Workspace` or a row read with Core."""

    @property
    def id(self) -> int: ...

    @property
    def key(self) -> str: ...


async def append(
    session: AsyncSession,
    workspace: ChainOwner,
    *,
    at: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    summary: str,
    data: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Chain one event to the workspace's head. The head is locked by the transaction's first
    append and followed in memory; the events are written with the transaction's other queued
    rows (`store.pending`: one `executemany`, before anything reads them, at the latest at
    commit) and the head is moved to the last of them: an ORM object per event cost ten times
    the insert itself."""
    heads = pending.per_transaction(session, _HEADS, dict[int, _Head])
    head = heads.get(workspace.id)
    if head is None:
        head = heads[workspace.id] = await _locked_head(session, workspace)
        pending.on_write(session, _HEADS, partial(_move_heads, heads))
    seq, prev_hash = head.seq + 1, head.hash
    data_json = canonical_json(data or {})
    encoded = encoded_link(
        workspace=head.workspace_key,
        seq=seq,
        at=format_at(at),
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        summary=summary,
        data=data_json,
        reason=reason,
        prev_hash=prev_hash,
    )
    digest = encoded_hash(encoded)
    pending.queue(
        session,
        _EVENTS,
        {
            "workspace_id": head.workspace_id,
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "summary": summary,
            "data": data_json,
            "reason": reason,
            "prev_hash": prev_hash,
            "hash": digest,
            "encoded": encoded,
        },
    )
    head.seq, head.hash = seq, digest


@dataclass(slots=True)
class _Head:
    """A chain head locked by this transaction, where its appends have moved it, and where
    the row in the database stands (`written_seq`)."""

    workspace_id: int
    workspace_key: str
    seq: int
    hash: str
    written_seq: int


_HEADS = "audit_heads"
_EVENTS = table(AuditEvent)
_HEAD_TABLE = table(AuditHead)
_LOCK_HEAD = (
    select(_HEAD_TABLE.c.seq, _HEAD_TABLE.c.hash)
    .where(_HEAD_TABLE.c.workspace_id == bindparam("workspace_id"))
    .with_for_update()
)
_MOVE_HEAD = (
    update(_HEAD_TABLE)
    .where(_HEAD_TABLE.c.workspace_id == bindparam("head"))
    .values(seq=bindparam("to_seq"), hash=bindparam("to_hash"))
)


async def _locked_head(session: AsyncSession, workspace: ChainOwner) -> _Head:
    """The workspace's chain head, locked (`SELECT … FOR UPDATE`) by the first append of this
    transaction and kept for the next ones: the lock serializes appends per workspace until the
    transaction ends, so nobody else can move the head in between. (SQLite has no row locks:
    there a write transaction holds the whole database from its BEGIN IMMEDIATE.)

    What the transaction changed or queued so far is written first, not while the head is
    held: every append in the workspace waits for the head, so each round trip under it
    counts (a run request's run, a status change's workflow)."""
    connection = await session.connection()
    if connection.dialect.name != "sqlite":  # there nothing else waits for the head itself
        await session.run_sync(_write_before_lock)
    seq, hash_ = (await connection.execute(_LOCK_HEAD, {"workspace_id": workspace.id})).one()
    return _Head(workspace.id, workspace.key, seq, hash_, seq)


def _write_before_lock(session: Session) -> None:
    session.flush()
    pending.write(session)


def _move_heads(heads: dict[int, _Head], connection: Connection) -> None:
    """After the events are written: each head moved to its last event."""
    moved = [head for head in heads.values() if head.written_seq != head.seq]
    if moved:
        connection.execute(
            _MOVE_HEAD,
            [{"head": h.workspace_id, "to_seq": h.seq, "to_hash": h.hash} for h in moved],
        )
    for head in moved:
        head.written_seq = head.seq


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
    return matching(select(AuditEvent), workspace_id, where)


def matching(query: Select[Any], workspace_id: int, where: AuditFilter) -> Select[Any]:
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

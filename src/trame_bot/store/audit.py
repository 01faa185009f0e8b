"""The audit log: append to a workspace's chain, read its head and its events. There is no
update or delete here, by design (nor anywhere: exports are `audit_export`, verify reads are
`audit_verify`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Connection,
    LargeBinary,
    Select,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import NoResultFound
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.audit_chain import (
    GENESIS_HASH,
    LinkParts,
    encoded_hash,
    format_at,
    link_parts,
)
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
    """Chain one event to the workspace's head, when the transaction writes its queued rows
    (`store.pending`: before anything reads them, at the latest at commit, after the
    transaction's other changes).

    The head is taken only then, not here: every append in the workspace waits for it until
    the transaction ends, so the hold is kept to the write-out and the commit. On PostgreSQL
    an event written out alone (the usual case) is chained by one statement that locks the
    head, finishes and hashes the event's bytes and moves the head (`_CHAIN_IN_DATABASE`):
    each round trip under the lock came back through this process's event loop, and under
    load those waits were most of the hold. Several at once, and any on SQLite (where the
    write transaction already holds the whole database), are chained in Python."""
    data_json = canonical_json(data or {})
    columns = {
        "workspace_id": workspace.id,
        "at": at,
        "actor": actor,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "summary": summary,
        "data": data_json,
        "reason": reason,
    }
    parts = link_parts(
        workspace=workspace.key,
        at=format_at(at),
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        summary=summary,
        data=data_json,
        reason=reason,
    )
    pending.queue_rows(session, _CHAINED, (columns, parts))


Link = tuple[dict[str, Any], LinkParts]
"""An event waiting for its place in the chain: its columns, and its bytes but for that place."""

_EVENTS = table(AuditEvent)
_HEAD_TABLE = table(AuditHead)
_READ_HEAD = (
    select(_HEAD_TABLE.c.seq, _HEAD_TABLE.c.hash)
    .where(_HEAD_TABLE.c.workspace_id == bindparam("workspace_id"))
    .with_for_update()
)
_MOVE_HEAD = (
    update(_HEAD_TABLE)
    .where(_HEAD_TABLE.c.workspace_id == bindparam("head"))
    .values(seq=bindparam("to_seq"), hash=bindparam("to_hash"))
)
_CHAIN_IN_DATABASE = text(
    """
    WITH head AS (
        SELECT seq + 1 AS seq, hash AS prev_hash,
               :before_prev_hash || convert_to(hash, 'UTF8') || :before_seq
                   || convert_to(CAST(seq + 1 AS text), 'UTF8') || :after_seq AS encoded
        FROM audit_heads WHERE workspace_id = :workspace_id
        FOR UPDATE
    ), event AS (
        INSERT INTO audit_events (workspace_id, seq, at, actor, action, entity_type, entity_id,
                                  summary, data, reason, prev_hash, hash, encoded)
        SELECT :workspace_id, seq, :at, :actor, :action, :entity_type, :entity_id,
               :summary, :data, :reason, prev_hash, encode(sha256(encoded), 'hex'), encoded
        FROM head
        RETURNING seq, hash
    )
    UPDATE audit_heads SET seq = event.seq, hash = event.hash
    FROM event WHERE audit_heads.workspace_id = :workspace_id
    """
).bindparams(
    bindparam("before_prev_hash", type_=LargeBinary),
    bindparam("before_seq", type_=LargeBinary),
    bindparam("after_seq", type_=LargeBinary),
    bindparam("at", type_=_EVENTS.c.at.type),
)
"""One event chained by PostgreSQL itself. Read committed: the head's row lock waits for the
transaction holding it, then reads the row as that one left it, so no two events get a place."""


def _write_chained(connection: Connection, links: list[Link]) -> None:
    """A write-out's events chained: a single one by PostgreSQL itself, to hold the head for
    one statement; several (a bulk append, an alert pausing many workflows) in Python, where
    one INSERT writes them all (as many head updates in one transaction measured slower: each
    one leaves the row a version longer for the next to walk)."""
    if len(links) == 1 and connection.dialect.name == "postgresql":
        ((columns, parts),) = links
        moved = connection.execute(
            _CHAIN_IN_DATABASE,
            {
                **columns,
                "before_prev_hash": parts.before_prev_hash,
                "before_seq": parts.before_seq,
                "after_seq": parts.after_seq,
            },
        )
        if moved.rowcount != 1:  # no head: the statement would have written nothing
            raise NoResultFound(f"workspace {columns['workspace_id']} has no audit chain head")
    else:
        _chain_in_python(connection, links)


def _chain_in_python(connection: Connection, links: list[Link]) -> None:
    """Each head read (locked, where the database has row locks), the events hashed here and
    written in one `executemany`, then each head moved to its last event."""
    heads: dict[int, tuple[int, str]] = {}
    events = []
    for columns, parts in links:
        workspace_id = columns["workspace_id"]
        found = heads.get(workspace_id)
        if found is None:
            found = connection.execute(_READ_HEAD, {"workspace_id": workspace_id}).one()
        seq, prev_hash = found[0] + 1, found[1]
        encoded = parts.encoded(prev_hash, seq)
        digest = encoded_hash(encoded)
        events.append(
            {**columns, "seq": seq, "prev_hash": prev_hash, "hash": digest, "encoded": encoded}
        )
        heads[workspace_id] = (seq, digest)
    connection.execute(insert(_EVENTS), events)
    connection.execute(
        _MOVE_HEAD,
        [{"head": head, "to_seq": seq, "to_hash": hash_} for head, (seq, hash_) in heads.items()],
    )


_CHAINED = pending.Rows(_EVENTS.name, _write_chained, last=True)


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


def newest(workspace_id: int, where: AuditFilter, limit: int) -> Select[AuditEvent]:
    """The newest `limit` matching events as ORM objects, newest first."""
    return filtered(workspace_id, where).order_by(in_chain_order(where).desc()).limit(limit)


def in_chain_order(where: AuditFilter) -> ColumnElement[int]:
    """What to ORDER BY for matching events in chain order (`.desc()`: newest first).

    Filtered by an entity, the entity's events are read from the entity index and sorted: an
    entity's events are few (a run's handful, a workflow's or a connector's changes). Ordered
    by `seq` itself, SQLite (which keeps no statistics on this table) walks the workspace's
    whole log in `seq` order to spare that sort: with a million events, listing an entity
    that has none took 340 ms and exporting it 0.9 s. `seq + 0` orders the same, and no
    index can serve it."""
    seq = _EVENTS.c.seq
    return seq + 0 if where.entity_id is not None else seq


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

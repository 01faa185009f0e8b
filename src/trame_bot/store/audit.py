"""The audit log: append and read, nothing else. There is no update or delete here, by design."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from json.encoder import encode_basestring as json_string
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    LargeBinary,
    Select,
    String,
    Text,
    TextClause,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from trame_bot.domain.audit_chain import GENESIS_HASH, encoded_hash, encoded_link, format_at
from trame_bot.domain.plan import canonical_json
from trame_bot.store import audit_spelling, pending
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
    there a write transaction holds the whole database from its BEGIN IMMEDIATE.)"""
    connection = await session.connection()
    seq, hash_ = (await connection.execute(_LOCK_HEAD, {"workspace_id": workspace.id})).one()
    return _Head(workspace.id, workspace.key, seq, hash_, seq)


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
    async for rows in _driver_batches(connection, query, batch):
        yield rows


@dataclass
class Copied:
    """How many rows a `copy_exported` wrote, known once its last chunk is read."""

    rows: int = 0


async def copy_exported(
    session: AsyncSession,
    workspace_id: int,
    workspace_key: str,
    where: AuditFilter,
    copied: Copied,
    *,
    jsonl: bool,
) -> AsyncIterator[bytes]:
    """PostgreSQL only: the export of the matching events, oldest first, written by the server
    (`COPY (SELECT …) TO STDOUT`) and streamed as it arrives, in UTF-8 chunks cut anywhere.
    No row becomes a Python object: this is what `psql \\copy` does, at its speed.

    CSV rows are `EXPORTED` as PostgreSQL's CSV writes them (no header). JSON Lines are each
    built by the server as `services.audit.jsonl_line` writes them and copied as a one-column
    "CSV" whose quote and delimiter (0x01, 0x02) cannot occur in a JSON line (JSON escapes
    every control character), so no line is ever quoted: the lines come out as built."""
    connection = await session.connection()
    table = AuditEvent.__table__.c
    options: dict[str, str]
    if jsonl:
        query = select(_jsonl_text("postgresql", workspace_key))
        options = {"format": "csv", "quote": "\x01", "delimiter": "\x02"}
    else:
        at = _at_text("postgresql")
        query = select(*(at if name == "at" else table[name] for name in EXPORTED))
        options = {"format": "csv"}
    sql, args = _positional(connection, _where(query, workspace_id, where).order_by(table.seq))
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    # A few chunks in flight at most: the COPY waits on a full queue, so memory stays flat
    # however slowly the reader (an HTTP client, a file) takes them.
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)

    async def copy() -> None:
        try:
            status = await driver.copy_from_query(sql, *args, output=chunks.put, **options)
        except Exception:
            await chunks.put(None)  # the reader drains, stops, then awaits this task's error
            raise
        copied.rows = int(str(status).rpartition(" ")[2])
        await chunks.put(None)

    task = asyncio.create_task(copy())
    try:
        while (chunk := await chunks.get()) is not None:
            yield chunk
        await task
    finally:
        if not task.done():  # the reader stopped early: stop the COPY
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _jsonl_text(dialect: str, workspace_key: str) -> ColumnElement[str]:
    """An export line as `services.audit.jsonl_line` writes it (no newline), by the database."""
    table = AuditEvent.__table__.c
    parts: list[ColumnElement[Any]] = []
    for name in EXPORTED:
        separator = "{" if name == "seq" else ", "
        parts.append(literal(f'{separator}"{name}": ', String()))
        if name == "seq":
            parts.append(cast(table.seq, String()))
        elif name == "at":
            parts.append(_quoted(dialect, _at_text(dialect)))
        else:
            parts.append(_quoted(dialect, table[name]))
    parts.append(literal(f', "workspace": {json_string(workspace_key)}}}', String()))
    return _joined(parts)


_NEEDS_NO_QUOTES = frozenset({"seq", "at", "prev_hash", "hash"})
"""Columns whose text never holds a comma, a quote or a line break."""


def _csv_text() -> ColumnElement[str]:
    """An export row in CSV (no newline), by SQLite: a field is quoted, its quotes doubled,
    when it holds a comma, a quote, a CR or a LF (RFC 4180, PostgreSQL's COPY and Python's
    csv module quote alike, except that Python leaves a lone CR unquoted); NULL is empty."""
    table = AuditEvent.__table__.c
    parts: list[ColumnElement[Any]] = []
    for n, name in enumerate(EXPORTED):
        if n:
            parts.append(literal(",", String()))
        if name == "at":
            parts.append(_at_text("sqlite"))
        elif name in _NEEDS_NO_QUOTES:
            parts.append(cast(table[name], String()))
        else:
            value = func.coalesce(table[name], "", type_=String())
            special = or_(*(func.instr(value, char) > 0 for char in (",", '"', "\n", "\r")))
            quoted = '"' + func.replace(value, '"', '""', type_=String()) + '"'
            parts.append(case((special, quoted), else_=value))
    return _joined(parts)


async def stream_lines(
    sessions: Sequence[AsyncSession],
    workspace_id: int,
    workspace_key: str,
    where: AuditFilter,
    *,
    jsonl: bool,
    batch: int = 5_000,
) -> AsyncIterator[tuple[int, bytes]]:
    """SQLite: the export's lines (each with its newline) oldest first, as chunks of UTF-8
    bytes and how many lines each holds, written by the database. Neither a line nor a value
    becomes a Python object, and SQLite works without the GIL while this process writes out
    what it already has.

    Each chunk is one statement (`_chunk_query`) over a span of `batch` sequence numbers,
    which concatenates the lines of that span (`group_concat`); the spans are shared out in
    turn between `sessions` (each its own connection, and driver thread), so that several
    cores write the export. Their snapshots may differ, but not below the last event the
    first session saw, which is where the export ends: events are never changed once written.

    A line is one `printf` of the stored text where that text needs no quoting or escaping
    (`_quick_line`), as in nearly every event; the text that decides it comes back beside
    the chunk and is looked through here (`_needs_care`). A chunk where some of it does is
    read again, the same events, each field spelled with care (`_csv_text`, `_jsonl_text`).

    An export of one entity reads that entity's index in one statement instead (its events
    are few, and spread over the whole log), each line spelled with care."""
    first = sessions[0]
    connection = await first.connection()
    careful = _joined(
        [_jsonl_text("sqlite", workspace_key) if jsonl else _csv_text(), literal("\n", String())]
    )
    if where.entity_type is not None or where.entity_id is not None:
        query = _where(select(careful), workspace_id, where).order_by(AuditEvent.seq)
        async for rows in _driver_batches(connection, query, batch):
            yield len(rows), "".join([line for (line,) in rows]).encode()
        return
    bounds: list[ColumnElement[Any]] = [func.min(AuditEvent.seq), func.max(AuditEvent.seq)]
    span = _where(select(*bounds), workspace_id, where)
    low, high = (await connection.execute(span)).one()
    if low is None:
        return
    quick, decisive = _quick_line(workspace_key, careful, jsonl=jsonl)
    special = _JSON_SPECIAL if jsonl else _CSV_SPECIAL
    readers = [
        await _ChunkReader.open(session, workspace_id, where, quick, decisive, careful, batch)
        for session in sessions
    ]
    starts = iter(range(low - 1, high, batch))
    pending: deque[tuple[_ChunkReader, int, asyncio.Future[tuple[int, bytes, bytes]]]] = deque()

    def ask(n: int) -> None:
        for start in itertools.islice(starts, n):
            reader = readers[(start - low + 1) // batch % len(readers)]
            pending.append((reader, start, asyncio.ensure_future(reader.quick(start))))

    # Two spans per reader asked for ahead: each reader always has the next one to write.
    ask(2 * len(readers))
    try:
        while pending:
            reader, start, chunk = pending.popleft()
            count, lines, text = await chunk
            ask(1)
            if count and _needs_care(text, special):
                count, lines = await reader.careful(start)
            if count:
                yield count, lines
    finally:
        for _, _, chunk in pending:
            chunk.cancel()
        await asyncio.gather(*(chunk for _, _, chunk in pending), return_exceptions=True)


class _ChunkReader:
    """One connection's statements for `stream_lines`: a span's lines written quickly, or
    with care."""

    def __init__(self, driver: Any, quick: _Statement, careful: _Statement) -> None:
        self._driver = driver
        self._quick = quick
        self._careful = careful

    @classmethod
    async def open(
        cls,
        session: AsyncSession,
        workspace_id: int,
        where: AuditFilter,
        quick: ColumnElement[str],
        decisive: ColumnElement[str],
        careful: ColumnElement[str],
        batch: int,
    ) -> _ChunkReader:
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        quickly = _chunk_query(workspace_id, where, quick, decisive, batch)
        carefully = _chunk_query(workspace_id, where, careful, literal("", String()), batch)
        return cls(
            driver,
            _Statement.of(connection, quickly, batch),
            _Statement.of(connection, carefully, batch),
        )

    async def quick(self, start: int) -> tuple[int, bytes, bytes]:
        count, lines, text = await self._run(self._quick, start)
        return count, lines, text

    async def careful(self, start: int) -> tuple[int, bytes]:
        count, lines, _ = await self._run(self._careful, start)
        return count, lines

    async def _run(self, statement: _Statement, start: int) -> tuple[int, bytes, bytes]:
        (row,) = await self._driver.execute_fetchall(statement.sql, statement.values(start))
        count, lines, text = row
        return int(count), lines or b"", text or b""


@dataclass(frozen=True)
class _Statement:
    """A compiled `_chunk_query`, and where its span's bounds go among its values."""

    sql: str
    args: tuple[Any, ...]
    start_slot: int
    end_slot: int
    batch: int

    @classmethod
    def of(cls, connection: AsyncConnection, query: Select[Any], batch: int) -> _Statement:
        sql, args = _positional(connection, query)
        names = list(query.compile(dialect=connection.dialect).positiontup or [])
        return cls(sql, tuple(args), names.index(_START), names.index(_END), batch)

    def values(self, start: int) -> list[Any]:
        values = list(self.args)
        values[self.start_slot], values[self.end_slot] = start, start + self.batch
        return values


_START, _END = "trame_span_start", "trame_span_end"
_CSV_SPECIAL = tuple(char.encode() for char in ',"\n\r\0')
"""What makes a CSV field need quotes (and NUL, which `printf` would cut a text at)."""
_JSON_SPECIAL = (b'"', b"\\", *(bytes([code]) for code in range(0x20)))
"""What JSON escapes in a string (`encode_basestring` with non-ASCII left as it is)."""


def _needs_care(text: bytes, special: Sequence[bytes]) -> bool:
    """Whether `text` holds any of `special` (a `memchr` each: far cheaper than a regex)."""
    return any(char in text for char in special)


def _chunk_query(
    workspace_id: int,
    where: AuditFilter,
    line: ColumnElement[str],
    decisive: ColumnElement[str],
    batch: int,
) -> Select[Any]:
    """The matching events numbered after `_START` and up to `_END` (`batch` numbers), as
    one row: how many, their `line`s concatenated oldest first, and their `decisive` texts
    concatenated, both as bytes. The LIMIT (never reached) keeps the ORDER BY, which SQLite
    follows as it feeds `group_concat` (a sub-select without a LIMIT may lose it)."""
    table = AuditEvent.__table__.c
    columns: list[ColumnElement[Any]] = [line.label("line"), decisive.label("decisive")]
    chosen = (
        _where(select(*columns), workspace_id, where)
        .where(
            table.seq > bindparam(_START, 0, type_=BigInteger()),
            table.seq <= bindparam(_END, 0, type_=BigInteger()),
        )
        .order_by(table.seq)
        .limit(batch)
        .subquery()
    )
    outer: list[ColumnElement[Any]] = [
        func.count(),
        cast(func.group_concat(chosen.c.line, ""), LargeBinary()),
        cast(func.group_concat(chosen.c.decisive, ""), LargeBinary()),
    ]
    return select(*outer)


def _quick_line(
    workspace_key: str, careful: ColumnElement[str], *, jsonl: bool
) -> tuple[ColumnElement[str], ColumnElement[str]]:
    """An export line written by one `printf` of the stored text, and the text that decides
    whether that is the line: it is when the decisive text holds no character that a CSV
    field would quote (`_CSV_SPECIAL`) or a JSON string would escape (`_JSON_SPECIAL`).
    `at` must be stored as `UTCDateTime` writes it; in CSV, `data` must be a JSON object,
    which holds quotes (so it is quoted whole: `%w` doubles them) unless it is `{}`. Other
    events take the `careful` line, and their decisive text is empty."""
    table = AuditEvent.__table__.c
    raw_at = type_coerce(table.at, String())
    stored_at = func.length(raw_at) == 26
    fields = [table.actor, table.action, table.entity_type, table.entity_id, table.summary]
    if jsonl:
        workspace = json_string(workspace_key).replace("%", "%%")
        quick = func.printf(
            '{"seq": %d, "at": "%.10sT%s+00:00", "actor": "%s", "action": "%s", '
            '"entity_type": "%s", "entity_id": "%s", "summary": "%s", "reason": %s, '
            f'"data": %s, "prev_hash": "%s", "hash": "%s", "workspace": {workspace}}}\n',
            table.seq,
            raw_at,
            func.substr(raw_at, 12),
            *fields,
            func.json_quote(table.reason),
            func.json_quote(table.data),
            table.prev_hash,
            table.hash,
            type_=String(),
        )
        # `||`, not printf: a NUL stays in the text, and is found, instead of ending it.
        decisive = _joined([*fields, table.prev_hash, table.hash])
        return case((stored_at, quick), else_=careful), case((stored_at, decisive), else_="")
    values = [table.seq, raw_at, func.substr(raw_at, 12), *fields, table.reason, table.data]
    start = "%d,%.10sT%s+00:00,%s,%s,%s,%s,%s,%s,"
    end = ",%s,%s\n"
    hashes = [table.prev_hash, table.hash]
    quoted = func.printf(start + '"%w"' + end, *values, *hashes, type_=String())
    plain = func.printf(start + "%s" + end, *values, *hashes, type_=String())
    quotes = (func.instr(table.data, '"') > 0) & (func.instr(table.data, "\0") == 0)
    empty = table.data == "{}"
    decisive = _joined([*fields, func.coalesce(table.reason, "", type_=String())])
    return (
        case((stored_at & quotes, quoted), (stored_at & empty, plain), else_=careful),
        case((stored_at & (quotes | empty), decisive), else_=""),
    )


def _quoted(dialect: str, value: ColumnElement[Any]) -> ColumnElement[str]:
    """Text as JSON, byte for byte as `json.encoder.encode_basestring` quotes it (both
    databases leave non-ASCII as it is and escape control characters the same way); NULL as
    `null`."""
    if dialect == "postgresql":
        return func.coalesce(cast(func.to_json(value), Text()), "null", type_=String())
    return func.json_quote(value, type_=String())


async def stream_chain(
    session: AsyncSession,
    workspace_id: int,
    *,
    first_seq: int | None = None,
    last_seq: int | None = None,
    batch: int = 5_000,
) -> AsyncIterator[Sequence[tuple[int, str, bytes, str]]]:
    """The chain oldest first (or its events `first_seq`..`last_seq`), `batch` at a time, as
    `(seq, prev_hash, encoded, hash)` straight from the driver: verifying costs a hash per
    event and nothing else. Whether the other columns spell `encoded` is for the database to
    say (`mismatched`)."""
    connection = await session.connection()
    table = AuditEvent.__table__.c
    query = select(table.seq, table.prev_hash, table.encoded, table.hash).where(
        table.workspace_id == workspace_id
    )
    if first_seq is not None:
        query = query.where(table.seq >= first_seq)
    if last_seq is not None:
        query = query.where(table.seq <= last_seq)
    async for rows in _driver_batches(connection, query.order_by(table.seq), batch):
        yield rows


@dataclass(frozen=True, slots=True)
class PackedEvents:
    """The events numbered `first`..`last` of a chain as one row (`string_agg`,
    `group_concat`): `count` of them, their sequence numbers (`"1,2,3"`), `prev_hash`es and
    `hash`es (each run together), stored bytes run together and the length of each, and
    whether every one ends with the chain's `ending`. Empty when none is there."""

    first: int
    last: int
    count: int
    seqs: str
    prev_hashes: str
    hashes: str
    encoded: bytes
    lengths: Sequence[int]
    ends_right: bool


_PACKED_POSTGRES = """
SELECT count(*), string_agg(seq::text, ','), string_agg(prev_hash, ''), string_agg(hash, ''),
    string_agg(encoded, ''::bytea), array_agg(length(encoded)),
    bool_and(substring(encoded from length(encoded) - $1 + 1) = $2)
FROM (SELECT seq, prev_hash, hash, encoded FROM audit_events
    WHERE workspace_id = $3 AND seq >= $4 AND seq <= $5 ORDER BY seq) AS run
"""
_PACKED_SQLITE = """
SELECT count(*), group_concat(seq), group_concat(prev_hash, ''), group_concat(hash, ''),
    CAST(group_concat(encoded, '') AS BLOB), group_concat(length(encoded)),
    min(substr(encoded, -?) = ?)
FROM (SELECT seq, prev_hash, hash, encoded FROM audit_events
    WHERE workspace_id = ? AND seq >= ? AND seq <= ? ORDER BY seq LIMIT ?)
"""
"""The aggregates take the rows in the sub-select's order (SQLite follows it when the
sub-select has a LIMIT, never reached; PostgreSQL keeps it). The caller's checks do not take
that order on trust: a run out of order fails them."""


async def stream_packed(
    session: AsyncSession, workspace_id: int, ending: bytes, *, batch: int = 5_000
) -> AsyncIterator[PackedEvents]:
    """The whole chain oldest first as `PackedEvents` of `batch` sequence numbers, up to the
    last event there is. As rows, a million events cost the driver a Python object per value
    (more than hashing them, and on SQLite done in its thread under the GIL, so it cannot
    overlap the hashing); a row per `batch` events costs it nothing, and the database builds
    the next one (the server; SQLite in the driver's thread, without the GIL) while the
    caller hashes this one."""
    connection = await session.connection()
    table = AuditEvent.__table__.c
    bottom, top = (
        await connection.execute(
            select(func.min(table.seq), func.max(table.seq)).where(
                table.workspace_id == workspace_id
            )
        )
    ).one()
    if top is None:
        return
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    postgres = connection.dialect.name == "postgresql"
    statement = await driver.prepare(_PACKED_POSTGRES) if postgres else None

    async def read(first: int) -> PackedEvents:
        last = first + batch - 1
        if statement is not None:
            row = await statement.fetchrow(len(ending), ending, workspace_id, first, last)
            lengths = row[5] or []
        else:
            args = (len(ending), ending, workspace_id, first, last, batch)
            (row,) = await driver.execute_fetchall(_PACKED_SQLITE, args)
            lengths = [int(n) for n in row[5].split(",")] if row[5] else []
        count, seqs, prevs, hashes, encoded = row[:5]
        return PackedEvents(
            first,
            last,
            count,
            seqs or "",
            prevs or "",
            hashes or "",
            encoded or b"",
            lengths,
            row[6] in (True, 1),
        )

    first = min(bottom, 1)  # an event numbered below 1 is read, and named out of place
    ahead = asyncio.ensure_future(read(first))
    try:
        while first <= top:
            run = await ahead
            if first + batch <= top:
                ahead = asyncio.ensure_future(read(first + batch))
            yield run
            first += batch
    finally:
        if not ahead.done():
            ahead.cancel()
            await asyncio.gather(ahead, return_exceptions=True)


async def mismatched(session: AsyncSession, workspace_id: int, *, full: bool = False) -> list[int]:
    """The workspace's events whose columns do not spell their `encoded` bytes, by sequence
    number (`store.audit_spelling`): read from the partial index the database keeps on every
    write, a few rows. With `full`, the index is not used and every event is spelled here and
    now (seconds per million): right even if the engine's files or catalogs were edited."""
    connection = await session.connection()
    dialect = connection.dialect.name
    settings = ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan")
    if full and dialect == "postgresql":
        for setting in settings:
            await connection.execute(text(f"SET LOCAL {setting} = off"))
    rows = await connection.execute(
        mismatched_statement(dialect, full=full), {"workspace_id": workspace_id}
    )
    seqs = [int(seq) for (seq,) in rows.all()]
    if full and dialect == "postgresql":
        for setting in settings:  # the chain's stream that follows reads through its index
            await connection.execute(text(f"RESET {setting}"))
    return seqs


def mismatched_statement(dialect: str, *, full: bool = False) -> TextClause:
    """`mismatched`'s query: the index's own predicate, written out, so the database answers
    from the index (SQLite and PostgreSQL use a partial index only for a query that states
    its predicate) or, without it, by spelling every event. `full` on SQLite: `NOT INDEXED`
    (on PostgreSQL the caller switches index scans off)."""
    source = "audit_events NOT INDEXED" if full and dialect == "sqlite" else "audit_events"
    predicate = audit_spelling.predicate(dialect).replace(":", "\\:")
    return text(
        f"SELECT seq FROM {source} WHERE workspace_id = :workspace_id AND {predicate} ORDER BY seq"
    )


async def one_event(
    session: AsyncSession, workspace_id: int, seq: int
) -> tuple[Sequence[Any], bytes | None] | None:
    """One event as `stream_exported` reads it (`EXPORTED`), and its stored bytes: for the
    careful check of an event the fast pass could not clear."""
    connection = await session.connection()
    table = AuditEvent.__table__.c
    dialect = connection.dialect.name
    columns = [_at_text(dialect) if name == "at" else table[name] for name in EXPORTED]
    query = select(*columns, table.encoded).where(
        table.workspace_id == workspace_id, table.seq == seq
    )
    found = [row async for rows in _driver_batches(connection, query, 1) for row in rows]
    if not found:
        return None
    *row, encoded = found[0]
    return row, encoded if isinstance(encoded, bytes) else None


async def _driver_batches(
    connection: AsyncConnection, query: Select[Any], batch: int
) -> AsyncIterator[list[Any]]:
    """The query's rows as the driver makes them (tuples from sqlite3, records from asyncpg),
    `batch` per fetch: a SQLAlchemy row per event cost as much as the database's own work
    for the reads that go through every event (verify, export). Runs in the session's
    transaction, so in its snapshot."""
    sql, args = _positional(connection, query)
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if connection.dialect.name == "postgresql":
        if not driver.is_in_transaction():
            # SQLAlchemy opens asyncpg's transaction with its first statement; a cursor needs one.
            await connection.execute(select(literal(1)))
        rows = await driver.cursor(sql, *args)
    else:
        rows = await driver.execute(sql, args)
    if connection.dialect.name != "postgresql":
        try:
            while batch_rows := await rows.fetchmany(batch):
                yield batch_rows
        finally:
            await rows.close()
        return
    try:
        # The next batch is asked for before this one is handed over: the server makes it
        # while the caller hashes or writes this one, instead of each waiting on the other.
        # (Not on SQLite: its thread needs the GIL for every row, which the caller holds.)
        ahead = asyncio.ensure_future(rows.fetch(batch))
        while batch_rows := await ahead:
            ahead = asyncio.ensure_future(rows.fetch(batch))
            await asyncio.sleep(0)  # lets the request leave before the caller's work begins
            yield batch_rows
    finally:
        if not ahead.done():
            ahead.cancel()
            await asyncio.gather(ahead, return_exceptions=True)


def _positional(connection: AsyncConnection, query: Select[Any]) -> tuple[str, list[Any]]:
    """The query as the driver takes it: its SQL, and its values in order, each converted by
    its column's type as SQLAlchemy would (`at`: aware datetimes, naive UTC on SQLite). The
    values are never spliced into the SQL: an entity comes from a Slack user."""
    dialect = connection.dialect
    compiled = query.compile(dialect=dialect)
    values = compiled.construct_params()
    args = []
    for name in compiled.positiontup or ():
        convert = compiled.binds[name].type.bind_processor(dialect)
        args.append(values[name] if convert is None else convert(values[name]))
    return compiled.string, args


def _joined(parts: Sequence[ColumnElement[Any]]) -> ColumnElement[str]:
    """`a || b || …`: NULL if any part is NULL, which fails the hash and takes the careful
    path (only `reason` may be NULL, and it is quoted as `null` first)."""
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.op("||", return_type=String())(part)
    return joined


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

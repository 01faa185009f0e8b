"""Exporting the audit log: matching events as rows, or an export's bytes written by the
database itself (PostgreSQL's COPY; SQLite's `group_concat` of lines, on several connections)."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    LargeBinary,
    Select,
    String,
    bindparam,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from trame_bot.store.audit import AuditFilter, in_chain_order, matching
from trame_bot.store.audit_export_lines import (
    CSV_SPECIAL,
    JSON_SPECIAL,
    careful_line,
    jsonl_text,
    quick_line,
)
from trame_bot.store.audit_rows import driver_batches, exported_columns, positional
from trame_bot.store.models import AuditEvent


async def stream_exported(
    session: AsyncSession, workspace_id: int, where: AuditFilter, *, batch: int = 2_000
) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """Matching events oldest first, `batch` at a time, as plain rows straight from the driver
    (no ORM objects, no type conversion), `at` already written by the database as `format_at`
    writes it: exporting or verifying millions of events costs little Python per row. The
    columns are `EXPORTED`."""
    connection = await session.connection()
    columns = exported_columns(connection.dialect.name)
    query = matching(select(*columns), workspace_id, where).order_by(in_chain_order(where))
    async for rows in driver_batches(connection, query, batch):
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
    options: dict[str, str]
    if jsonl:
        query = select(jsonl_text("postgresql", workspace_key))
        options = {"format": "csv", "quote": "\x01", "delimiter": "\x02"}
    else:
        query = select(*exported_columns("postgresql"))
        options = {"format": "csv"}
    ordered = matching(query, workspace_id, where).order_by(in_chain_order(where))
    sql, args = positional(connection, ordered)
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
    (`quick_line`), as in nearly every event; the text that decides it comes back beside
    the chunk and is looked through here (`_needs_care`). A chunk where some of it does is
    read again, the same events, each field spelled with care (`careful_line`).

    An export of one entity reads that entity's index in one statement instead (its events
    are few, and spread over the whole log), each line spelled with care."""
    first = sessions[0]
    connection = await first.connection()
    careful = careful_line(workspace_key, jsonl=jsonl)
    if where.entity_type is not None or where.entity_id is not None:
        query = matching(select(careful), workspace_id, where).order_by(in_chain_order(where))
        async for rows in driver_batches(connection, query, batch):
            yield len(rows), "".join([line for (line,) in rows]).encode()
        return
    bounds: list[ColumnElement[Any]] = [func.min(AuditEvent.seq), func.max(AuditEvent.seq)]
    span = matching(select(*bounds), workspace_id, where)
    low, high = (await connection.execute(span)).one()
    if low is None:
        return
    quick, decisive = quick_line(workspace_key, careful, jsonl=jsonl)
    special = JSON_SPECIAL if jsonl else CSV_SPECIAL
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
        sql, args = positional(connection, query)
        names = list(query.compile(dialect=connection.dialect).positiontup or [])
        return cls(sql, tuple(args), names.index(_START), names.index(_END), batch)

    def values(self, start: int) -> list[Any]:
        values = list(self.args)
        values[self.start_slot], values[self.end_slot] = start, start + self.batch
        return values


_START, _END = "trame_span_start", "trame_span_end"


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
        matching(select(*columns), workspace_id, where)
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

"""Reading the audit chain for `audit verify`: each event's stored bytes, a row each or a run
of events packed into one row, the events the database says do not spell their bytes, and one
event's columns for the careful check."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.store import audit_spelling
from trame_bot.store.audit_rows import driver_batches, driver_in_transaction, exported_columns
from trame_bot.store.models import AuditEvent


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
    async for rows in driver_batches(connection, query.order_by(table.seq), batch):
        yield rows


@dataclass(frozen=True, slots=True)
class PackedEvents:
    """The events numbered `first`..`last` of a chain as one row (`string_agg`,
    `group_concat`): `count` of them, their `prev_hash`es and `hash`es (each run together),
    stored bytes run together and the length of each, and whether every one ends with the
    chain's `ending`. Empty when none is there."""

    first: int
    last: int
    count: int
    prev_hashes: str
    hashes: str
    encoded: bytes
    lengths: Sequence[int]
    ends_right: bool


_PACKED_POSTGRES = """
SELECT count(*), string_agg(prev_hash, ''), string_agg(hash, ''),
    string_agg(encoded, ''::bytea), array_agg(length(encoded)),
    bool_and(substring(encoded from length(encoded) - $1 + 1) = $2)
FROM (SELECT seq, prev_hash, hash, encoded FROM audit_events
    WHERE workspace_id = $3 AND seq >= $4 AND seq <= $5 ORDER BY seq) AS run
"""
_PACKED_SQLITE = """
SELECT count(*), group_concat(prev_hash, ''), group_concat(hash, ''),
    CAST(group_concat(encoded, '') AS BLOB), group_concat(length(encoded))
FROM (SELECT seq, prev_hash, hash, encoded FROM audit_events
    WHERE workspace_id = ? AND seq >= ? AND seq <= ? ORDER BY seq LIMIT ?)
"""
"""The aggregates take the rows in the sub-select's order (SQLite follows it when the
sub-select has a LIMIT, never reached; PostgreSQL keeps it). The caller's checks do not take
that order on trust: a run out of order fails them.

SQLite does not say whether each event ends with the chain's ending: that aggregate
(`min(substr(encoded, -n) = ending)`, a blob made per row) cost it 0.3–0.45 s of its 1.9–2.1
s of CPU per million events, in the thread whose statement the hashing waits for;
`_ends_right` checks the same from the lengths in this process for about 0.1 s."""


AHEAD = 2
"""Runs asked for ahead of the one being hashed, per reader. On SQLite's one reader, two:
with one, aiosqlite's thread finished the next run and then sat idle until this one was
hashed and the one after was asked for, and waited again for the GIL to start it, so the
statement and the hashing took turns (wall time was the sum of both); with the next two
queued it starts the second as soon as the first is done. Measured on a million events: 2.5
s against 3.9 s, the same CPU. On PostgreSQL, three readers with two runs each measured
2.5× and 2.6× hashlib, with one each 2.5–3.0×."""


async def stream_packed(
    sessions: Sequence[AsyncSession], workspace_id: int, ending: bytes, *, batch: int = 5_000
) -> AsyncGenerator[PackedEvents, None]:
    """The whole chain oldest first as `PackedEvents` of `batch` sequence numbers, up to the
    last event the first session sees. As rows, a million events cost the driver a Python
    object per value (more than hashing them, and on SQLite done in its thread under the GIL,
    so it cannot overlap the hashing); a row per `batch` events costs it nothing.

    Building a run is most of the database's work (the server's, or SQLite's in the driver's
    thread, without the GIL), and as much as the caller's hashing: the runs are shared out in
    turn between `sessions` (each its own connection, so its own server process or driver
    thread), `AHEAD` runs asked for ahead per session, so that they are built on other cores
    while the caller hashes. Their snapshots may differ (on PostgreSQL each statement has its
    own anyway), but no run goes past the last event the first session saw."""
    connection = await sessions[0].connection()
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
    readers = [
        await _RunReader.open(session, workspace_id, ending, top, batch) for session in sessions
    ]
    first = min(bottom, 1)  # an event numbered below 1 is read, and named out of place
    starts = iter(range(first, top + 1, batch))
    pending: deque[asyncio.Future[PackedEvents]] = deque()

    def ask(n: int) -> None:
        for start in itertools.islice(starts, n):
            reader = readers[(start - first) // batch % len(readers)]
            pending.append(asyncio.ensure_future(reader.read(start)))

    ask(AHEAD * len(readers))  # each reader builds its next runs while this one is hashed
    try:
        while pending:
            run = await pending.popleft()
            ask(1)
            yield run
    finally:
        # Runs asked for ahead are waited for, not cancelled: one statement each, and a
        # session must not be closed (its transaction ended) with a statement still running.
        await asyncio.gather(*pending, return_exceptions=True)


class _RunReader:
    """One connection's statement for `stream_packed`: the run that starts at a sequence
    number."""

    def __init__(
        self, driver: Any, statement: Any, workspace_id: int, ending: bytes, top: int, batch: int
    ) -> None:
        self._driver = driver
        self._statement = statement
        self._workspace_id = workspace_id
        self._ending = ending
        self._top = top
        self._batch = batch
        self._turn = asyncio.Lock()

    @classmethod
    async def open(
        cls, session: AsyncSession, workspace_id: int, ending: bytes, top: int, batch: int
    ) -> _RunReader:
        connection = await session.connection()
        driver = await driver_in_transaction(connection)
        postgres = connection.dialect.name == "postgresql"
        statement = await driver.prepare(_PACKED_POSTGRES) if postgres else None
        return cls(driver, statement, workspace_id, ending, top, batch)

    async def read(self, first: int) -> PackedEvents:
        last = min(first + self._batch - 1, self._top)
        ending = self._ending
        if self._statement is not None:
            # Each reader is asked for more than one run, and asyncpg refuses a second
            # statement on a connection while one runs. aiosqlite needs no turn: its thread
            # runs what it is given in order, so the next run is queued there and starts as
            # soon as this one ends, while this process hashes (taking the turn on SQLite too
            # lost that overlap: 3.5× hashlib against 2.3×).
            async with self._turn:
                row = await self._statement.fetchrow(
                    len(ending), ending, self._workspace_id, first, last
                )
            lengths = row[4] or []
            ends_right = row[5] is True
        else:
            args = (self._workspace_id, first, last, self._batch)
            (row,) = await self._driver.execute_fetchall(_PACKED_SQLITE, args)
            lengths = list(map(int, row[4].split(","))) if row[4] else []
            ends_right = _ends_right(row[3] or b"", lengths, ending)
        count, prevs, hashes, encoded = row[:4]
        return PackedEvents(
            first,
            last,
            count,
            prevs or "",
            hashes or "",
            encoded or b"",
            lengths,
            ends_right,
        )


def _ends_right(encoded: bytes, lengths: Sequence[int], ending: bytes) -> bool:
    """Whether each of the events run together in `encoded`, `lengths` long, ends with
    `ending`, as `PackedEvents.ends_right` says. A length shorter than `ending` fails (the
    ending would be read across two events); lengths that do not add up to `encoded` are
    the caller's to refuse. The loop runs in C (`map`): this is per event, for a million."""
    size = len(ending)
    if not lengths:
        return True
    if min(lengths) < size:
        return False
    marks = itertools.accumulate(lengths, initial=-size)  # where each event's ending starts
    next(marks)
    return all(map(encoded.startswith, itertools.repeat(ending), marks))


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
    columns = exported_columns(connection.dialect.name)
    query = select(*columns, table.encoded).where(
        table.workspace_id == workspace_id, table.seq == seq
    )
    found = [row async for rows in driver_batches(connection, query, 1) for row in rows]
    if not found:
        return None
    *row, encoded = found[0]
    return row, encoded if isinstance(encoded, bytes) else None

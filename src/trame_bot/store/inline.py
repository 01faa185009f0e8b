"""SQLite statements run on the event loop's own thread, through aiosqlite's interface.

SQLAlchemy's async SQLite dialect drives aiosqlite, which runs each call (cursor, execute,
fetch, close) on a thread of its own and hands the result back: four hand-offs a statement,
each waiting for the GIL. A short transaction on a local file does microseconds of work per
call, so the hand-offs were most of a command's cost, and more under load. Here the same
aiosqlite connection runs every call as it is queued, on the caller's thread: SQLAlchemy and
aiosqlite are unchanged, only the queue differs.

What that asks of callers (`store.database`): no statement may wait long, as the loop waits
with it. Reads in WAL mode never wait for a lock; a write waits only for another process's
write lock, and takes it with a short busy timeout, retried on the loop between tries. Long
reads (exports, reports) stay on aiosqlite's thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import aiosqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

BUSY_TIMEOUT_MS = 10
"""How long one try at a lock held by another process may stop the loop."""


class _RunAtOnce:
    """Stands in for the queue and the thread of an `aiosqlite.Connection`: what is queued runs
    at once and settles its future, so the awaiting coroutine never suspends."""

    daemon = True

    def start(self) -> None:
        """The thread aiosqlite would start: there is none."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the awaiting caller, as aiosqlite does
            if future is not None and not future.done():
                future.set_exception(exc)
        else:
            if future is not None and not future.done():
                future.set_result(result)


def creator(path: str, wait: float = 5.0) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    """SQLAlchemy's `async_creator`: an aiosqlite connection to `path` that runs inline, in
    WAL mode. Switching a new file to WAL needs it to itself for a moment: that is waited for
    here, on the loop, for up to `wait` seconds (as the engine's other connections would in
    SQLite's busy handler), never with the loop stopped."""

    async def connect() -> aiosqlite.Connection:
        def open_file() -> sqlite3.Connection:
            # sqlite3's own default would block the loop up to 5 s on a lock.
            return sqlite3.connect(
                path,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )

        connection = aiosqlite.Connection(open_file, iter_chunk_size=64)
        run_at_once = _RunAtOnce()
        # The two attributes aiosqlite (pinned in pyproject) hands its calls to.
        connection._tx = run_at_once  # type: ignore[assignment]
        connection._thread = run_at_once  # type: ignore[assignment]
        await connection
        try:
            await _in_wal_mode(connection, wait)
        except BaseException:
            await connection.close()
            raise
        return connection

    return connect


async def _in_wal_mode(connection: aiosqlite.Connection, wait: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    pause = 0.002
    while True:
        try:
            cursor = await connection.execute("PRAGMA journal_mode=WAL")
            await cursor.close()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or loop.time() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)


def file_of(url: str) -> str | None:
    """The database file of a SQLite URL; None for an in-memory database, which lives in one
    connection and so cannot be shared by two engines."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def is_locked(exc: OperationalError) -> bool:
    """SQLITE_BUSY: another connection holds the lock."""
    return "database is locked" in str(exc.orig)

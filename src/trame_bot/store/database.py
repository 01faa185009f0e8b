"""The database handle: engine, sessions, and transactions that fail as `Unavailable`.

SQLite runs in WAL mode and starts write transactions with BEGIN IMMEDIATE: writers queue on
the busy timeout instead of failing when two of them upgrade read locks at once (the deadlock
that plain deferred transactions hit). Read-only sessions start a deferred BEGIN, so a long
export never blocks writers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from trame_bot.errors import Unavailable

log = logging.getLogger(__name__)

READ_ONLY = "trame_read_only"
SQLITE_BUSY_TIMEOUT_MS = 5_000
"""Writers queue this long for SQLite's lock; transactions last milliseconds, so a longer wait
means something holds the file, and a clear "unavailable" beats a Slack ack timing out."""
_UNAVAILABLE = "the database is unavailable right now; nothing was changed, try again in a moment"


class Database:
    def __init__(
        self, url: str, *, pool_size: int = 10, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {}
        if not self.is_sqlite:
            # A server connection can drop; a SQLite file cannot, so it is not pinged per use.
            options.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            _configure_sqlite(self.engine, busy_timeout_ms)
        self._writer = async_sessionmaker(self.engine, expire_on_commit=False)
        self._reader = async_sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        self._on_commit: list[Callable[[], None]] = []
        self._busy_timeout = busy_timeout_ms / 1000
        self._write_turns: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every committed write (the outbox worker wakes on it)."""
        self._on_commit.append(listener)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed when the block ends, rolled back when it raises."""
        try:
            async with self._write_turn(), self._writer() as session, session.begin():
                yield session
        except (OperationalError, InterfaceError, OSError) as exc:
            raise _unavailable(exc) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise _unavailable(exc) from exc
            raise
        for listener in self._on_commit:
            listener()

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        """SQLite has one writer. This process's write transactions take turns here, first come
        first served, rather than each polling the file lock from its own thread: SQLite's
        busy handler sleeps up to 100 ms between tries, so under load the lock sits idle while
        writers sleep, and the unlucky ones time out. Other processes (the CLI, a scheduler)
        still queue on the busy timeout; the wait here is bounded by it too."""
        if not self.is_sqlite:
            yield
            return
        loop = asyncio.get_running_loop()
        if self._write_turns is None or self._write_turns[0] is not loop:
            self._write_turns = (loop, asyncio.Lock())
        turn = self._write_turns[1]
        try:
            await asyncio.wait_for(turn.acquire(), self._busy_timeout)
        except TimeoutError:
            raise _unavailable(TimeoutError()) from None
        try:
            yield
        finally:
            turn.release()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only session: never writes, never holds SQLite's write lock."""
        try:
            async with self._reader() as session, session.begin():
                yield session
        except (OperationalError, InterfaceError, OSError) as exc:
            raise _unavailable(exc) from exc

    async def ping(self) -> None:
        async with self.reading() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _unavailable(exc: BaseException) -> Unavailable:
    log.warning("database unavailable: %s", type(exc).__name__)
    return Unavailable(_UNAVAILABLE)


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN is ours to spell.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

"""The database handle: engine, sessions, and transactions that fail as `Unavailable` (the
database does not answer) or `SchemaNotReady` (it answers, but its tables are missing or older
than this code).

SQLite runs in WAL mode and starts write transactions with BEGIN IMMEDIATE: writers queue
instead of failing when two of them upgrade read locks at once (the deadlock that plain
deferred transactions hit). Read-only sessions start a deferred BEGIN, so a long export never
blocks writers.

On SQLite, transactions and `lookup` reads run their statements on the event loop's own thread
(`store.inline`): each is a few microseconds of work on a local file, and handing it to a
driver thread and back cost more than the work (a GIL hand-off per call, ~40 calls a command).
`reading()` keeps the driver's thread, for reads that may be long (exports, reports).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from trame_bot import json_text
from trame_bot.errors import SchemaNotReady, TrameError, Unavailable
from trame_bot.store import driver_errors, inline, pending, sqlite_library
from trame_bot.store.direct import Lookups

log = logging.getLogger(__name__)

READ_ONLY = "trame_read_only"
SQLITE_BUSY_TIMEOUT_MS = 5_000
"""Writers queue this long for SQLite's lock; transactions last milliseconds, so a longer wait
means something holds the file, and a clear "unavailable" beats a Slack ack timing out."""
PING_IDLE_AFTER_S = 30.0
"""A PostgreSQL connection idle in the pool this long is pinged before its next use
(`_check_on_checkout`); one in steady use never is."""
_IDLE_SINCE = "trame_idle_since"
_UNAVAILABLE = "the database is unavailable right now; nothing was changed, try again in a moment"
_CONFLICT = (
    "another change to the same things was being made at the same instant, and the database "
    "stopped this one; nothing was changed, try again"
)
SCHEMA_NOT_READY = (
    "the database schema is missing or out of date; nothing was changed. "
    "An operator must run `trame-bot db upgrade`"
)


class Database:
    def __init__(
        self,
        url: str,
        *,
        connections: int = 20,
        busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
        ping_idle_after: float = PING_IDLE_AFTER_S,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # JSON columns and aggregates are read through msgspec (see `json_text`).
        options: dict[str, Any] = {"json_deserializer": json_text.loads}
        if self.is_sqlite:
            sqlite_library.stop_counting_memory()  # before this process's first connection
        else:
            # Each pool keeps what it opened, up to `connections`, and a request past that
            # waits for one: an overflow connection is closed when given back, and at 50
            # concurrent requests the pool opened and closed one every few requests (a new
            # PostgreSQL backend each time, several milliseconds of CPU on both sides).
            options.update(pool_size=connections, max_overflow=0)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        """The driver's engine: on SQLite, statements run on aiosqlite's thread."""
        if not self.is_sqlite:
            _check_on_checkout(self.engine, ping_idle_after)
        quick = self.engine
        if self.is_sqlite:
            _configure_sqlite(self.engine, busy_timeout_ms)
            path = inline.file_of(url)
            if path is not None:
                quick = create_async_engine(
                    url,
                    async_creator=inline.creator(path, busy_timeout_ms / 1000),
                    json_deserializer=json_text.loads,
                )
                _configure_sqlite(quick, inline.BUSY_TIMEOUT_MS)
        self._quick_engine = quick
        """Short transactions and lookups: the same engine on PostgreSQL, inline on SQLite."""
        self._writer = async_sessionmaker(quick, expire_on_commit=False)
        read_only = {READ_ONLY: True}
        self._looker = async_sessionmaker(
            quick.execution_options(**read_only), expire_on_commit=False
        )
        self._reader = async_sessionmaker(
            self.engine.execution_options(**read_only), expire_on_commit=False
        )
        lookups_engine = quick
        if not self.is_sqlite:
            # A lookup reads a few ranges of an index. Over a large table PostgreSQL's
            # estimates can still pick a parallel plan, and starting its workers took 10 ms
            # where the read took 0.7 ms (a pilot's record, a million audit events).
            serial = {"server_settings": {"max_parallel_workers_per_gather": "0"}}
            lookups_engine = create_async_engine(url, connect_args=serial, **options)
            _check_on_checkout(lookups_engine, ping_idle_after)
        self.lookups = Lookups(
            lookups_engine,
            unavailable=self._unavailable,
            schema_missing=self._schema_not_ready,
            shared=quick is not self.engine,  # SQLite's inline connections
        )
        """The hottest reads, on the driver's own connection (`store.direct`)."""
        self._on_commit: list[tuple[Callable[[], None], frozenset[str] | None]] = []
        self._busy_timeout = busy_timeout_ms / 1000
        self._write_turns: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._trouble: str | None = None

    def on_commit(
        self, listener: Callable[[], None], *, tables: Collection[str] | None = None
    ) -> None:
        """Call `listener` after every committed write, or with `tables` only after those that
        wrote rows to one of them (`store.pending.written`): the outbox worker wakes when a
        commit gives it work, not after every run request."""
        self._on_commit.append((listener, None if tables is None else frozenset(tables)))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed when the block ends, rolled back when it raises."""
        try:
            async with self._write_turn(), self._writer() as session:
                if self._quick_engine is not self.engine:
                    await self._take_write_lock(session)
                try:
                    yield session
                except BaseException:
                    await session.rollback()
                    raise
                await session.commit()
                written = pending.written(session.sync_session)
        except DBAPIError as exc:
            translated = self._translated(exc)
            if translated is None:
                raise
            raise translated from exc
        except OSError as exc:
            raise self._unavailable(exc) from exc
        self._answered()
        for listener, tables in self._on_commit:
            if tables is None or not tables.isdisjoint(written):
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
            raise self._unavailable(TimeoutError()) from None
        try:
            yield
        finally:
            turn.release()

    async def _take_write_lock(self, session: AsyncSession) -> None:
        """BEGIN IMMEDIATE on the inline connection, waiting for another process's write
        lock here, on the event loop, rather than in SQLite's busy handler, which would stop
        the whole loop while it sleeps. This process's writers already take turns."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._busy_timeout
        pause = 0.002
        while True:
            try:
                await session.connection()
                return
            except OperationalError as exc:
                if not inline.is_locked(exc) or loop.time() + pause > deadline:
                    raise
            await session.rollback()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    @asynccontextmanager
    async def lookup(self) -> AsyncIterator[AsyncSession]:
        """A short read-only session for a request's own reads (a few indexed statements):
        on SQLite it runs on the event loop's thread, so it must never scan or stream."""
        async with self._read_with(self._looker) as session:
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only session: never writes, never holds SQLite's write lock; on SQLite on
        the driver's thread, so a long read (an export, a report) never stops the loop."""
        async with self._read_with(self._reader) as session:
            yield session

    @asynccontextmanager
    async def _read_with(
        self, sessions: async_sessionmaker[AsyncSession]
    ) -> AsyncIterator[AsyncSession]:
        try:
            async with sessions() as session, session.begin():
                yield session
        except DBAPIError as exc:
            translated = self._translated(exc)
            if translated is None:
                raise
            raise translated from exc
        except OSError as exc:
            raise self._unavailable(exc) from exc
        self._answered()

    def _translated(self, exc: DBAPIError) -> TrameError | None:
        """What a driver error means to the caller: a missing table or column is a schema
        that was never migrated (or is older than this code), an outage or a transaction
        PostgreSQL ended for a conflict (a deadlock) is `Unavailable`; anything else (None)
        is a bug, raised as it is."""
        if _schema_missing(exc):
            return self._schema_not_ready(exc)
        if driver_errors.ended_for_a_conflict(exc.orig):
            # Not an outage: the lock order should make this rare, and the person can retry.
            log.warning(
                "PostgreSQL ended a transaction for a conflict with another (SQLSTATE %s); "
                "its request was told to try again",
                getattr(exc.orig, "sqlstate", None),
            )
            return Unavailable(_CONFLICT)
        if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
            return self._unavailable(exc)
        return None

    def _schema_not_ready(self, exc: BaseException) -> SchemaNotReady:
        self._troubled("schema", "database schema missing or out of date (%s)", exc)
        return SchemaNotReady(SCHEMA_NOT_READY)

    def _unavailable(self, exc: BaseException) -> Unavailable:
        self._troubled("unavailable", "database unavailable: %s", exc)
        return Unavailable(_UNAVAILABLE)

    def _troubled(self, kind: str, message: str, exc: BaseException) -> None:
        """Logged once when the trouble begins (or changes), not on every request or job
        turn that meets it: an outage under load would otherwise be a line per request."""
        if self._trouble != kind:
            self._trouble = kind
            log.warning(message, _cause(exc))

    def _answered(self) -> None:
        if self._trouble is not None:
            self._trouble = None
            log.info("the database answers again")

    async def ping(self) -> None:
        async with self.reading() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.lookups.close()
        for engine in {self.engine, self._quick_engine, self.lookups.engine}:
            await engine.dispose()


def _schema_missing(exc: DBAPIError) -> bool:
    return driver_errors.schema_missing(exc.orig)


def _cause(exc: BaseException) -> str:
    """The driver's own words for SQLite and PostgreSQL's schema errors (they name a table
    or column, never a value); only the type of anything else, which may quote parameters."""
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    if driver_errors.schema_missing(error):
        return str(error).splitlines()[0]
    return type(exc).__name__


def _check_on_checkout(engine: AsyncEngine, ping_idle_after: float) -> None:
    """Make sure a pooled PostgreSQL connection still lives before a request uses it, asking
    the server only when it could not be known otherwise.

    - A connection whose socket the server ended (a restart, a proxy cutting it; asyncpg saw
      the end) is replaced, at no cost.
    - A connection idle in the pool for more than `ping_idle_after` seconds is pinged first,
      and replaced if the ping fails: idle connections are what a firewall, a NAT or a load
      balancer drops without telling either end, and the ping finds out before a request.
    - Under load no connection is idle that long, so no request pays for a ping. SQLAlchemy's
      `pool_pre_ping` pings on every checkout: on asyncpg a BEGIN, an empty query and a
      ROLLBACK, three round trips before each transaction.

    A connection lost some other way fails its statement. That request answers "unavailable",
    and SQLAlchemy then replaces every connection the pool held from before the loss."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection")
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is not None and time.monotonic() - idle_since > ping_idle_after:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception as exc:
                raise DisconnectionError("this connection no longer answers") from exc


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

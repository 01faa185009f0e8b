"""The reads every request makes before it answers, run on the driver's own connection with
SQL compiled once.

Those reads are one to four indexed statements (what a command or a click starts from, the
glance of `/trame status <workflow>`, an approval card, a Slack installation, an API key): on
SQLite the database does about 0.02 ms of work for one, on PostgreSQL one round trip.
Through a session, each statement also paid SQLAlchemy's execution path (the session's
transaction, the connection's events, an execution context, the result's metadata and type
processing, the greenlet hops): 0.3-0.6 ms of CPU a statement here, most of what a command
cost the server. A `Statement` is a Core query compiled once per dialect into the driver's
SQL and the order of its arguments; `Lookups` runs it with the driver (aiosqlite, inline on
the event loop; asyncpg). Building queries stays SQLAlchemy's; only their execution is ours.

What the rows are: named tuples of the columns' values as SQLAlchemy's types make them (times
aware, JSON decoded, enums, booleans), through the same result processors a session uses.
What JSON itself carries (`functions.json_rows`) stays as JSON spells it.

What is given up, knowingly: no transaction around a lookup's statements. Each statement
reads its own snapshot, as a session's do on PostgreSQL (read committed); the go-live form
may show a pilot's record a moment newer than the workflow it read. Only SELECTs go through
here.

On SQLite's file every lookup runs on one inline connection, kept out of the pool
(`Lookups(shared=True)`). On PostgreSQL the connections come from a pool of their own,
checked out as the sessions' are (`database._check_on_checkout`: a connection whose socket
ended is replaced, one idle for a while is pinged first, one in steady use is not). One that
turns out dead only when used is dropped and the statement tried once more on a new one, as
a read may be; a second failure is `Unavailable`.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from trame_bot.errors import TrameError
from trame_bot.store.driver_errors import connection_lost, schema_missing

AnySelect = Select[*tuple[Any, ...]]
"""A SELECT of any columns."""


@dataclass(frozen=True)
class _Argument:
    """One positional argument: the caller's parameter `name` through the type's bind
    processor, or a constant the query itself holds (`name` None)."""

    name: str | None
    convert: Callable[[Any], Any] | None
    constant: Any = None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    arguments: tuple[_Argument, ...]
    results: tuple[tuple[int, Callable[[Any], Any]], ...]
    """Each column whose type turns the driver's value into ours, with the function."""
    row: Callable[[Sequence[Any]], Any]
    """A named tuple of the columns, by their keys or labels (`namedtuple._make`)."""

    def rows(self, fetched: Sequence[Sequence[Any]]) -> list[Any]:
        rows = []
        for fetched_row in fetched:
            values = list(fetched_row)
            for index, process in self.results:
                if values[index] is not None:
                    values[index] = process(values[index])
            rows.append(self.row(values))
        return rows

    def values(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for argument in self.arguments:
            if argument.name is None:
                values.append(argument.constant)
            elif argument.convert is None:
                values.append(params[argument.name])
            else:
                values.append(argument.convert(params[argument.name]))
        return values


class Statement:
    """A Core SELECT, compiled on first use for each dialect. Its parameters are `bindparam`s
    without values, given by name on each run; an expanding `IN` cannot be compiled once
    (use `functions.in_list`)."""

    def __init__(self, query: AnySelect) -> None:
        self.query = query
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        done = self._compiled.get(dialect.name)
        if done is None:
            done = self._compiled[dialect.name] = _compile(self.query, dialect)
        return done


def driver_sql(query: AnySelect, dialect: Dialect) -> tuple[str, list[Any]]:
    """A query that holds its own values (no parameters given by name), as the driver takes
    it: its SQL and its values in order (the audit export's and verify's reads)."""
    compiled = _compile(query, dialect)
    return compiled.sql, compiled.values({})


def _compile(query: AnySelect, dialect: Dialect) -> _Compiled:
    compiled = query.compile(dialect=dialect)
    if compiled.positiontup is None:
        raise ValueError(f"{dialect.name} takes named parameters; lookups need positional ones")
    arguments = []
    for name in compiled.positiontup:
        bind: BindParameter[Any] = compiled.binds[name]
        if bind.expanding:
            raise ValueError(f"`{bind.key}` is an expanding IN, respelled per call")
        # The dialect's own type: a JSON path, for one, is spelled per dialect ('$."key"').
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if bind.required:
            arguments.append(_Argument(bind.key, convert))
        else:
            value = bind.effective_value
            arguments.append(_Argument(None, None, value if convert is None else convert(value)))
    results = []
    for index, column in enumerate(query.selected_columns):
        process = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if process is not None:
            results.append((index, process))
    names = [str(column.key) for column in query.selected_columns]
    row_type: Any = namedtuple("Row", names, rename=True)  # type: ignore[misc]  # (fields known at run time)
    return _Compiled(str(compiled), tuple(arguments), tuple(results), row_type._make)


class Lookups:
    """Runs `Statement`s on connections of `engine`'s pool (`Database.lookups`)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        unavailable: Callable[[BaseException], TrameError],
        schema_missing: Callable[[BaseException], TrameError],
        shared: bool = False,
    ) -> None:
        """`shared`: one connection serves every lookup, checked out on first use and kept
        until `close`. For SQLite's inline connections (`store.inline`): a statement runs to
        its end before any other coroutine runs, and a lookup opens no transaction, so
        lookups sharing it cannot see or disturb each other. A checkout and its return
        (the pool's reset with them) cost 34 µs of CPU here against 5 µs for a one-row read,
        and `/trame status` in distributed mode made two."""
        self.engine = engine
        self._dialect = engine.dialect
        self._unavailable = unavailable
        self._schema_missing = schema_missing
        self._fetch = _fetch_sqlite if engine.dialect.name == "sqlite" else _fetch_postgresql
        self._shared = shared
        self._kept: PoolProxiedConnection | None = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Lookup]:
        """A connection for a few statements: a pooled one, given back when the block ends,
        or the shared one (`shared`)."""
        lookup = Lookup(self)
        try:
            yield lookup
        finally:
            await lookup.release()

    async def close(self) -> None:
        """Give the shared connection back (before the engine is disposed)."""
        kept, self._kept = self._kept, None
        if kept is not None:
            await greenlet_spawn(kept.close)

    async def _connection(self) -> PoolProxiedConnection:
        if not self._shared:
            return await self._checkout()
        if self._kept is None:
            raw = await self._checkout()
            if self._kept is None:
                self._kept = raw
            else:  # another lookup kept one while this checkout waited
                await greenlet_spawn(raw.close)
        return self._kept

    def _given_back(self, raw: PoolProxiedConnection) -> bool:
        """Whether `raw` goes back to the pool when its lookup ends (a shared one stays)."""
        return raw is not self._kept

    def _lost(self, raw: PoolProxiedConnection) -> None:
        if raw is self._kept:
            self._kept = None

    async def _checkout(self) -> PoolProxiedConnection:
        try:
            return await self.engine.raw_connection()
        except Exception as exc:
            # Not wrapped by SQLAlchemy on this path: the driver's own refusal (a server that
            # does not answer, a file that cannot be opened), or SQLAlchemy's.
            if isinstance(exc, DBAPIError) or connection_lost(exc) or hasattr(exc, "sqlstate"):
                raise self._unavailable(exc) from exc
            raise


class _ConnectionLost(Exception):
    pass


class Lookup:
    """`await lookup(statement, params)`: the statement's rows, on one pooled connection."""

    def __init__(self, lookups: Lookups) -> None:
        self._lookups = lookups
        self._raw: PoolProxiedConnection | None = None

    async def __call__(self, statement: Statement, params: Mapping[str, Any]) -> list[Any]:
        compiled = statement.compiled(self._lookups._dialect)
        values = compiled.values(params)
        try:
            fetched = await self._fetch(compiled.sql, values)
        except _ConnectionLost:
            # A pooled connection the server dropped since its last use: once more on a new
            # one. A second loss means the database is away.
            try:
                fetched = await self._fetch(compiled.sql, values)
            except _ConnectionLost as lost:
                raise self._lookups._unavailable(lost.__cause__ or lost) from lost.__cause__
        return compiled.rows(fetched)

    async def _fetch(self, sql: str, values: list[Any]) -> Sequence[Sequence[Any]]:
        lookups = self._lookups
        if self._raw is None:
            self._raw = await lookups._connection()
        raw = self._raw
        try:
            return await lookups._fetch(raw.driver_connection, sql, values)
        except Exception as exc:
            if schema_missing(exc):
                raise lookups._schema_missing(exc) from exc
            if not connection_lost(exc):
                raise
            self._raw = None
            lookups._lost(raw)
            await greenlet_spawn(raw.invalidate, exc)  # closes it: a call to the driver
            raise _ConnectionLost() from exc

    async def release(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None and self._lookups._given_back(raw):
            # The pool resets a connection it takes back (a rollback: no call to the database
            # outside a transaction, but SQLAlchemy's driver adapters make it in a greenlet).
            await greenlet_spawn(raw.close)


async def _fetch_sqlite(connection: Any, sql: str, values: list[Any]) -> Sequence[Sequence[Any]]:
    rows: Sequence[Sequence[Any]] = await connection.execute_fetchall(sql, values)
    return rows


async def _fetch_postgresql(
    connection: Any, sql: str, values: list[Any]
) -> Sequence[Sequence[Any]]:
    rows: Sequence[Sequence[Any]] = await connection.fetch(sql, *values)
    return rows

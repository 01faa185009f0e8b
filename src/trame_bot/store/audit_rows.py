"""Audit events as plain rows straight from the driver, for the reads that go through many of
them (export, verify): the exported columns, `at` written by the database, a query compiled
for the driver, and its rows in batches as the driver makes them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import ColumnElement, Select, String, case, func, literal, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncConnection

from trame_bot.store.direct import driver_sql
from trame_bot.store.models import AuditEvent

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
"""The columns `audit_export.stream_exported` yields, in this order (the export's columns)."""


def exported_columns(dialect: str) -> list[ColumnElement[Any]]:
    """The `EXPORTED` columns as the database reads them, `at` as text (`at_text`)."""
    table = AuditEvent.__table__.c
    return [at_text(dialect) if name == "at" else table[name] for name in EXPORTED]


async def driver_batches(
    connection: AsyncConnection, query: Select[Any], batch: int
) -> AsyncIterator[list[Any]]:
    """The query's rows as the driver makes them (tuples from sqlite3, records from asyncpg),
    `batch` per fetch: a SQLAlchemy row per event cost as much as the database's own work
    for the reads that go through every event (verify, export). Runs in the session's
    transaction, so in its snapshot."""
    sql, args = positional(connection, query)
    driver = await driver_in_transaction(connection)
    if connection.dialect.name == "postgresql":
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


async def driver_in_transaction(connection: AsyncConnection) -> Any:
    """The driver's own connection (aiosqlite's, asyncpg's) under the session, in the
    session's transaction: SQLAlchemy opens asyncpg's with its first statement, so one is run
    if none was. A statement run straight on asyncpg outside it would hold its locks past
    the session's end (a cursor, a suspended portal), and see another snapshot."""
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if connection.dialect.name == "postgresql" and not driver.is_in_transaction():
        await connection.execute(select(literal(1)))
    return driver


def positional(connection: AsyncConnection, query: Select[Any]) -> tuple[str, list[Any]]:
    """The query as the driver takes it: its SQL, and the values it holds in order, each
    converted by its column's type as SQLAlchemy would (`at`: aware datetimes, naive UTC on
    SQLite), as `store.direct` compiles its lookups. The values are never spliced into the
    SQL: an entity comes from a Slack user."""
    return driver_sql(query, connection.dialect)


def at_text(dialect: str) -> ColumnElement[str]:
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

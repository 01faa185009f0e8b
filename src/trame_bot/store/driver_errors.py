"""What a driver's own exception means: sqlite3's (under aiosqlite) and asyncpg's. Sessions
see them wrapped by SQLAlchemy (`DBAPIError.orig`), direct lookups (`store.direct`) as they
are raised."""

from __future__ import annotations

import sqlite3

_POSTGRES_SCHEMA_ERRORS = ("42P01", "42703")
"""SQLSTATEs undefined_table and undefined_column."""
_SQLITE_SCHEMA_ERRORS = ("no such table", "no such column", "has no column named")
_POSTGRES_CONFLICTS = ("40P01", "40001")
"""SQLSTATEs deadlock_detected and serialization_failure."""


def schema_missing(error: BaseException | None) -> bool:
    """A table or column the code needs is not there: the schema was never migrated, or is
    older than this code."""
    if getattr(error, "sqlstate", None) in _POSTGRES_SCHEMA_ERRORS:
        return True
    message = str(error)
    return isinstance(error, sqlite3.OperationalError) and any(
        known in message for known in _SQLITE_SCHEMA_ERRORS
    )


def ended_for_a_conflict(error: BaseException | None) -> bool:
    """PostgreSQL ended the transaction because another one wanted the same rows in the
    opposite order (a deadlock) or could not be serialized with it: trying again usually works."""
    return getattr(error, "sqlstate", None) in _POSTGRES_CONFLICTS


def connection_lost(error: BaseException) -> bool:
    """The connection, not the statement, failed: the socket is gone, asyncpg says the
    connection is closed, or PostgreSQL ended it (SQLSTATE classes 08 and 57P). On SQLite any
    operational error (a file that cannot be read, a lock held past the busy timeout): the
    statements themselves are SQLAlchemy's compilations, and tested."""
    if isinstance(error, OSError | sqlite3.OperationalError | sqlite3.InterfaceError):
        return True
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(("08", "57P"))
    return type(error).__name__ == "InterfaceError"  # asyncpg's "connection is closed"

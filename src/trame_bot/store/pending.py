"""Rows a write transaction adds without the ORM: queued in memory, written in one call per
kind (an `executemany` per table), first-queued first, before anything in the transaction
could read them.

A use case writes a handful of rows nobody reads back in the same transaction (its audit
events, its outbox messages, a decision). As ORM objects each cost the unit of work's
bookkeeping at flush, several times the INSERT itself; queued here they cost a dict. They are
written when the session next flushes, before any ORM-level statement it executes (so a query
in the same transaction sees them, as autoflush would show ORM objects), and at the latest
when it commits. A rolled-back transaction's rows are dropped with it: a new transaction on
the same session starts an empty queue.

Most rows are inserted as they are (`queue`). A kind whose rows depend on what the database
holds when they are written (audit events, chained to the head) brings its own `Rows` writer,
and a kind whose write takes a lock that others wait for is written `last`: after the other
queued rows and, at commit, after the ORM's own changes, so the lock is held for its own
statement and the COMMIT only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, event, insert, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session


@dataclass(frozen=True, eq=False)
class Rows:
    """One kind of queued row and how a write-out writes all of its rows at once."""

    table: str
    """The table they land in (`written`)."""
    write: Callable[[Connection, list[Any]], None]
    last: bool = False
    """Written after everything else: not before the ORM's changes at a flush (a flush reads
    nothing), after them at commit, and only before a query with everything else."""


@dataclass
class _Queue:
    transaction: object
    rows: dict[Rows, list[Any]] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    """Tables this transaction wrote rows to: queued here or flushed by the ORM."""


_KEY = "trame_pending_rows"


def queue(session: AsyncSession, table: Table, row: dict[str, Any]) -> None:
    """Add `row` to `table` within the session's current write transaction."""
    queue_rows(session, _inserted(table), row)


def queue_rows(session: AsyncSession, kind: Rows, row: Any) -> None:
    """Add `row`, written by `kind`, within the session's current write transaction."""
    _queue(session.sync_session).rows.setdefault(kind, []).append(row)


def _queue(session: Session) -> _Queue:
    transaction = session.get_transaction() or session.begin()
    found: _Queue | None = session.info.get(_KEY)
    if found is None or found.transaction is not transaction:
        found = session.info[_KEY] = _Queue(transaction)
    return found


def write(session: Session, *, last_too: bool = True) -> None:
    """Write what is queued now, the `last` kinds after the others unless `last_too` is false
    (the hooks below call it; so may a caller that reads with Core on the session's
    connection and needs its own rows)."""
    found: _Queue | None = session.info.get(_KEY)
    if found is None or not found.rows or found.transaction is not session.get_transaction():
        return
    kinds = sorted((kind for kind in found.rows if last_too or not kind.last), key=_is_last)
    if not kinds:
        return
    connection = session.connection()
    for kind in kinds:
        kind.write(connection, found.rows.pop(kind))
        found.written.add(kind.table)


def _is_last(kind: Rows) -> bool:
    return kind.last


@cache
def _inserted(table: Table) -> Rows:
    """One kind per table, with one INSERT construct: SQLAlchemy then finds its compiled form
    by identity instead of building and hashing a new statement for every write-out."""
    statement = insert(table)

    def write(connection: Connection, rows: list[Any]) -> None:
        connection.execute(statement, rows)

    return Rows(table.name, write)


def written(session: Session) -> frozenset[str]:
    """The tables the session's current or just committed transaction wrote rows to, queued
    here or flushed by the ORM (not those of bare UPDATE or DELETE statements)."""
    found: _Queue | None = session.info.get(_KEY)
    return frozenset(found.written) if found is not None else frozenset()


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    flushed = _queue(session).written
    for instance in (*session.new, *session.dirty, *session.deleted):
        flushed.add(inspect(instance).mapper.local_table.name)
    write(session, last_too=False)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    session.flush()  # the ORM's changes before the `last` rows, which the commit then follows
    write(session)


@event.listens_for(Session, "do_orm_execute")
def _before_execute(state: ORMExecuteState) -> None:
    write(state.session)

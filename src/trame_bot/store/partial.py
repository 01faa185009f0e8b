"""Partial indexes: an index of the rows in one state (pending or declined runs, failed
deliveries) stays as small as those rows, and rows in other states (most runs are live runs,
most deliveries are sent) cost it nothing when written.

A planner takes a partial index only when the query implies the index's predicate. A bound
value is not known when a plan is made for every value (a PostgreSQL prepared statement's
generic plan), so the queries these indexes serve write their state into the SQL
(`state_is`).

Every other comparison of these columns writes it too, whether or not it is meant for the
index. SQLite, seeing `state = ?` on a table with a partial index on `state`, cannot tell
whether the index applies until the value is bound, so it prepares the statement again each
time it runs: a one-row read by another index cost 8.6 µs against 1.4 µs with the state
written in (a test table, SQLite 3.40). `/trame status <workflow>`'s read, which compared
its pending runs' state so, took 114 µs of SQLite's time in the bench's database; with the
state written in (and a pilot's record added to it) 30 µs. `tests/services/test_query_plans.py`
finds such comparisons in the reads and in what the main commands run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, literal_column, text


def where(column: str, value: str) -> dict[str, Any]:
    """The keyword arguments of an `Index` of the rows whose `column` is `value`, the same
    predicate on both databases."""
    predicate = text(f"{column} = '{value}'")
    return {"sqlite_where": predicate, "postgresql_where": predicate}


def state_is(column: SQLColumnExpression[Any], value: str) -> ColumnElement[bool]:
    """`column == value` with the value written into the SQL, not bound (see above)."""
    return column == literal_column(f"'{value}'")

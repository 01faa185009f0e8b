"""Partial indexes: an index of the rows in one state (pending or declined runs, failed
deliveries) stays as small as those rows, and rows in other states (most runs are live runs,
most deliveries are sent) cost it nothing when written.

A planner takes a partial index only when the query implies the index's predicate. A bound
value is not known when a plan is made for every value (a PostgreSQL prepared statement's
generic plan), so the queries these indexes serve write their state into the SQL
(`state_is`)."""

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

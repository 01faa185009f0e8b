"""SQL the two databases spell differently, as SQLAlchemy constructs compiled per dialect
(SQLite and PostgreSQL): what lets the hot reads of `store.lookups` and `store.pilot` stay one
statement built once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, FunctionElement, String, bindparam, select
from sqlalchemy.ext.compiler import compiles


class json_rows(FunctionElement[Any]):  # noqa: N801 (a SQL function, named as one)
    """An aggregate: the group's rows as one JSON array of arrays, in the database's own
    functions (SQLite `json_group_array(json_array(…))`, PostgreSQL `json_agg(json_build_array
    (…))`, `[]` for no rows). Lets one statement carry a workflow's triggers, pending runs and
    connectors beside its own columns, instead of a statement for each. Values come back as
    JSON spells them: booleans may be 0/1, times are text."""

    type = JSON()
    inherit_cache = True


@compiles(json_rows, "sqlite")
def _json_rows_sqlite(element: json_rows, compiler: Any, **kw: Any) -> str:
    return f"json_group_array(json_array({compiler.process(element.clauses, **kw)}))"


@compiles(json_rows, "postgresql")
def _json_rows_postgresql(element: json_rows, compiler: Any, **kw: Any) -> str:
    inner = compiler.process(element.clauses, **kw)
    return f"coalesce(json_agg(json_build_array({inner})), '[]'::json)"


class embedded_json(FunctionElement[Any]):  # noqa: N801 (a SQL function, named as one)
    """A JSON column as a value inside `json_rows`: SQLite keeps JSON as text, which its
    `json_array` would embed as a string unless `json()` marks it JSON; PostgreSQL's column
    is JSON already."""

    type = JSON()
    inherit_cache = True


@compiles(embedded_json, "sqlite")
def _embedded_json_sqlite(element: embedded_json, compiler: Any, **kw: Any) -> str:
    return f"json({compiler.process(element.clauses, **kw)})"


@compiles(embedded_json, "postgresql")
def _embedded_json_postgresql(element: embedded_json, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


def json_time(text: str) -> datetime:
    """A time as `json_rows` carries it: SQLite's stored text (UTC, no zone) or PostgreSQL's
    ISO string with a zone; aware, in UTC."""
    at = datetime.fromisoformat(text)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


class list_elements(FunctionElement[Any]):  # noqa: N801 (a SQL function, named as one)
    """The elements of a JSON array of strings, as rows with one column, `value` (SQLite
    `json_each`, PostgreSQL `json_array_elements_text`). See `in_list`."""

    inherit_cache = True


@compiles(list_elements, "postgresql")
def _list_elements_postgresql(element: list_elements, compiler: Any, **kw: Any) -> str:
    return f"json_array_elements_text(CAST({compiler.process(element.clauses, **kw)} AS json))"


class array_elements(FunctionElement[Any]):  # noqa: N801 (a SQL function, named as one)
    """The elements of a JSON array column, as rows with one JSON column, `value` (SQLite
    `json_each`, PostgreSQL `json_array_elements`): see `store.lookups.step_uses_in`."""

    inherit_cache = True


@compiles(list_elements, "sqlite")
@compiles(array_elements, "sqlite")
def _json_each(element: list_elements | array_elements, compiler: Any, **kw: Any) -> str:
    """SQLite has one function for both: `value` is text for a string, JSON for the rest."""
    return f"json_each({compiler.process(element.clauses, **kw)})"


@compiles(array_elements, "postgresql")
def _array_elements_postgresql(element: array_elements, compiler: Any, **kw: Any) -> str:
    return f"json_array_elements({compiler.process(element.clauses, **kw)})"


def in_list(column: Any, name: str) -> Any:
    """`column IN` the strings of the list bound as `name`, passed as one JSON array
    (`as_list`). An expanding `IN` is respelled and its statement looked up again on every
    call, with as many parameters as the list has items; this statement is compiled once."""
    elements = list_elements(bindparam(name, type_=String())).table_valued("value")
    return column.in_(select(elements.c.value))


def as_list(values: Sequence[str]) -> str:
    """A list as `in_list` takes it."""
    return json.dumps(list(values))

"""An export's lines spelled by the database, as SQL expressions: CSV and JSON Lines with every
field quoted or escaped with care, and the quick `printf` line that serves nearly every event
on SQLite, with the text that says whether it may."""

from __future__ import annotations

from collections.abc import Sequence
from json.encoder import encode_basestring as json_string
from typing import Any

from sqlalchemy import ColumnElement, String, Text, case, cast, func, literal, or_, type_coerce

from trame_bot.store.audit_rows import EXPORTED, at_text
from trame_bot.store.models import AuditEvent


def careful_line(workspace_key: str, *, jsonl: bool) -> ColumnElement[str]:
    """An export line (with its newline) by SQLite, each field quoted or escaped with care."""
    text = jsonl_text("sqlite", workspace_key) if jsonl else _csv_text()
    return _joined([text, literal("\n", String())])


def jsonl_text(dialect: str, workspace_key: str) -> ColumnElement[str]:
    """An export line as `services.audit.jsonl_line` writes it (no newline), by the database."""
    table = AuditEvent.__table__.c
    parts: list[ColumnElement[Any]] = []
    for name in EXPORTED:
        separator = "{" if name == "seq" else ", "
        parts.append(literal(f'{separator}"{name}": ', String()))
        if name == "seq":
            parts.append(cast(table.seq, String()))
        elif name == "at":
            parts.append(_quoted(dialect, at_text(dialect)))
        else:
            parts.append(_quoted(dialect, table[name]))
    parts.append(literal(f', "workspace": {json_string(workspace_key)}}}', String()))
    return _joined(parts)


_NEEDS_NO_QUOTES = frozenset({"seq", "at", "prev_hash", "hash"})
"""Columns whose text never holds a comma, a quote or a line break."""


def _csv_text() -> ColumnElement[str]:
    """An export row in CSV (no newline), by SQLite: a field is quoted, its quotes doubled,
    when it holds a comma, a quote, a CR or a LF (RFC 4180, PostgreSQL's COPY and Python's
    csv module quote alike, except that Python leaves a lone CR unquoted); NULL is empty."""
    table = AuditEvent.__table__.c
    parts: list[ColumnElement[Any]] = []
    for n, name in enumerate(EXPORTED):
        if n:
            parts.append(literal(",", String()))
        if name == "at":
            parts.append(at_text("sqlite"))
        elif name in _NEEDS_NO_QUOTES:
            parts.append(cast(table[name], String()))
        else:
            value = func.coalesce(table[name], "", type_=String())
            special = or_(*(func.instr(value, char) > 0 for char in (",", '"', "\n", "\r")))
            quoted = '"' + func.replace(value, '"', '""', type_=String()) + '"'
            parts.append(case((special, quoted), else_=value))
    return _joined(parts)


CSV_SPECIAL = tuple(char.encode() for char in ',"\n\r\0')
"""What makes a CSV field need quotes (and NUL, which `printf` would cut a text at)."""
JSON_SPECIAL = (b'"', b"\\", *(bytes([code]) for code in range(0x20)))
"""What JSON escapes in a string (`encode_basestring` with non-ASCII left as it is)."""


def quick_line(
    workspace_key: str, careful: ColumnElement[str], *, jsonl: bool
) -> tuple[ColumnElement[str], ColumnElement[str]]:
    """An export line written by one `printf` of the stored text, and the text that decides
    whether that is the line: it is when the decisive text holds no character that a CSV
    field would quote (`CSV_SPECIAL`) or a JSON string would escape (`JSON_SPECIAL`).
    `at` must be stored as `UTCDateTime` writes it; in CSV, `data` must be a JSON object,
    which holds quotes (so it is quoted whole: `%w` doubles them) unless it is `{}`. Other
    events take the `careful` line, and their decisive text is empty."""
    table = AuditEvent.__table__.c
    raw_at = type_coerce(table.at, String())
    stored_at = func.length(raw_at) == 26
    fields = [table.actor, table.action, table.entity_type, table.entity_id, table.summary]
    if jsonl:
        workspace = json_string(workspace_key).replace("%", "%%")
        quick = func.printf(
            '{"seq": %d, "at": "%.10sT%s+00:00", "actor": "%s", "action": "%s", '
            '"entity_type": "%s", "entity_id": "%s", "summary": "%s", "reason": %s, '
            f'"data": %s, "prev_hash": "%s", "hash": "%s", "workspace": {workspace}}}\n',
            table.seq,
            raw_at,
            func.substr(raw_at, 12),
            *fields,
            func.json_quote(table.reason),
            func.json_quote(table.data),
            table.prev_hash,
            table.hash,
            type_=String(),
        )
        # `||`, not printf: a NUL stays in the text, and is found, instead of ending it.
        decisive = _joined([*fields, table.prev_hash, table.hash])
        return case((stored_at, quick), else_=careful), case((stored_at, decisive), else_="")
    values = [table.seq, raw_at, func.substr(raw_at, 12), *fields, table.reason, table.data]
    start = "%d,%.10sT%s+00:00,%s,%s,%s,%s,%s,%s,"
    end = ",%s,%s\n"
    hashes = [table.prev_hash, table.hash]
    quoted = func.printf(start + '"%w"' + end, *values, *hashes, type_=String())
    plain = func.printf(start + "%s" + end, *values, *hashes, type_=String())
    quotes = (func.instr(table.data, '"') > 0) & (func.instr(table.data, "\0") == 0)
    empty = table.data == "{}"
    decisive = _joined([*fields, func.coalesce(table.reason, "", type_=String())])
    return (
        case((stored_at & quotes, quoted), (stored_at & empty, plain), else_=careful),
        case((stored_at & (quotes | empty), decisive), else_=""),
    )


def _quoted(dialect: str, value: ColumnElement[Any]) -> ColumnElement[str]:
    """Text as JSON, byte for byte as `json.encoder.encode_basestring` quotes it (both
    databases leave non-ASCII as it is and escape control characters the same way); NULL as
    `null`."""
    if dialect == "postgresql":
        return func.coalesce(cast(func.to_json(value), Text()), "null", type_=String())
    return func.json_quote(value, type_=String())


def _joined(parts: Sequence[ColumnElement[Any]]) -> ColumnElement[str]:
    """`a || b || …`: NULL if any part is NULL, which fails the hash and takes the careful
    path (only `reason` may be NULL, and it is quoted as `null` first)."""
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.op("||", return_type=String())(part)
    return joined

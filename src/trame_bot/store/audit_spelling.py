"""How the database itself checks an audit event's columns against `encoded`, the bytes its
hash covers: the predicate of the partial index `ix_audit_events_mismatched`.

`audit verify` hashes each event's stored bytes in Python (`hashlib` and nothing else per
event); these bytes are tamper-evident through the chain, but the columns people read (the
summary, the actor, …) are copies of them. So every row must also be shown to spell its
bytes. Spelling a million rows in SQL costs several times the hashing itself (measured:
2–3 µs a row in SQLite, 6 µs in PostgreSQL, against 1–2 µs for hashlib), so the check is not
made at verify time but kept by the database: the partial index holds exactly the rows whose
columns do not spell the start of their bytes. The engine maintains an index on every write
of a row, whoever writes it and however (triggers and CHECK constraints can be switched off
by a session, index maintenance cannot), so an edit of any column, or of the bytes, puts the
row in the index, and verify reads the index (a few rows) instead of spelling every event.

The query verify runs (`MISMATCHED`) states the predicate itself: with the index in place the
database answers from it; without it (dropped, or `audit verify --full`, which forbids its
use) the same query spells every row, slower but still right. Only an edit made around the
engine (its files, its catalogs) can leave the index stale; `--full` catches that too.

The spelling is `encoded_link`'s, up to the `"summary"` field; the rest of the bytes,
`"workspace":<key>}`, names the chain and is checked in Python. It is not NFC-normalised and,
on PostgreSQL, escapes only the common control characters, so a few legitimate rows are in
the index too: verify re-encodes those in Python, which alone decides that one was edited.
Every function used is deterministic (SQLite) or immutable (PostgreSQL), as an index needs.
The text is also the migration's (0006), copied there: change it only with a new migration.
"""

from __future__ import annotations

from sqlalchemy import TextClause, text

INDEX = "ix_audit_events_mismatched"

SQLITE = (
    "(instr(encoded, CAST(printf("
    """'{"action":%s,"actor":%s,"at":"%sT%s+00:00","data":%s,"entity_id":%s,"""
    """"entity_type":%s,"prev_hash":%s,"reason":%s,"seq":%d,"summary":%s,', """
    "json_quote(action), json_quote(actor), substr(at, 1, 10), substr(at, 12), "
    "json_quote(data), json_quote(entity_id), json_quote(entity_type), json_quote(prev_hash), "
    "json_quote(reason), seq, json_quote(summary)) AS BLOB)) = 1 "
    "AND substr(at, 11, 1) = ' ') IS NOT 1"
)
"""SQLite: true unless the columns spell the start of `encoded`. `at` is stored as naive UTC
text (`YYYY-MM-DD HH:MM:SS.ffffff`), its space checked so no other spelling of it passes;
`json_quote` quotes text as `encode_basestring` does, control characters included. `IS NOT 1`
is true for NULL too: a row the predicate cannot spell is a mismatch."""


def _quoted(column: str) -> str:
    """Text as JSON with immutable functions only (`to_json` is merely stable): backslash,
    quote and the five control characters that have short escapes; any other control
    character stays raw, fails the spelling, and that row is checked in Python."""
    value = f"replace(replace({column}, '\\', '\\\\'), '\"', '\\\"')"
    for char, escape in (("\\n", "n"), ("\\r", "r"), ("\\t", "t"), ("\\b", "b"), ("\\f", "f")):
        value = f"replace({value}, E'{char}', '\\{escape}')"
    return f"'\"' || {value} || '\"'"


def _part(field: str) -> str:
    """One field of `at` in UTC (extract from a timestamp is immutable, `to_char` is not)."""
    return f"extract({field} from timezone('UTC', at))"


_AT = (
    f"lpad({_part('year')}::int::text, 4, '0') || '-' || "
    f"lpad({_part('month')}::int::text, 2, '0') || '-' || "
    f"lpad({_part('day')}::int::text, 2, '0') || 'T' || "
    f"lpad({_part('hour')}::int::text, 2, '0') || ':' || "
    f"lpad({_part('minute')}::int::text, 2, '0') || ':' || "
    f"lpad(({_part('microseconds')}::bigint / 1000000)::text, 2, '0') || '.' || "
    f"lpad(mod({_part('microseconds')}::bigint, 1000000)::text, 6, '0') || '+00:00'"
)

_POSTGRES_TEXT = " || ".join(
    [
        f"""'{{"action":' || {_quoted("action")}""",
        f"""',"actor":' || {_quoted("actor")}""",
        f"""',"at":"' || {_AT} || '"'""",
        f"""',"data":' || {_quoted("data")}""",
        f"""',"entity_id":' || {_quoted("entity_id")}""",
        f"""',"entity_type":' || {_quoted("entity_type")}""",
        f"""',"prev_hash":' || {_quoted("prev_hash")}""",
        f"""',"reason":' || coalesce({_quoted("reason")}, 'null')""",
        """',"seq":' || seq::text""",
        f"""',"summary":' || {_quoted("summary")} || ','""",
    ]
)

POSTGRES = (
    f"(position(decode(replace({_POSTGRES_TEXT}, '\\', '\\\\'), 'escape') in encoded) = 1) "
    "IS NOT TRUE"
)
"""PostgreSQL: the same predicate. The text becomes its UTF-8 bytes through `decode(…,
'escape')` with its backslashes doubled (immutable, where `convert_to` is only stable; the
server encoding is UTF-8)."""


def predicate(dialect: str) -> str:
    return POSTGRES if dialect == "postgresql" else SQLITE


def clause(sql: str) -> TextClause:
    """The predicate as a SQLAlchemy clause, its colons escaped (not bind parameters): the
    database matches the query's predicate to the index's only when both are literally the
    same expression."""
    return text(sql.replace(":", "\\:"))

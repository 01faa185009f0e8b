"""audit_events: the bytes each hash covers (encoded), and the index of rows that do not spell them

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 07:00:00

`audit verify` hashes the stored bytes; the partial index lists the rows whose columns do not
spell them (see `trame_bot.store.audit_spelling`, whose predicates are copied here as they
stood). Existing events get the bytes their columns encode to: an event edited before this
migration gets bytes that fail its hash, so the edit is still named by verify.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from trame_bot.domain.audit_chain import encoded_link, format_at

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_audit_events_mismatched"
BATCH = 5_000

SQLITE = (
    "(instr(encoded, CAST(printf("
    """'{"action":%s,"actor":%s,"at":"%sT%s+00:00","data":%s,"entity_id":%s,"""
    """"entity_type":%s,"prev_hash":%s,"reason":%s,"seq":%d,"summary":%s,', """
    "json_quote(action), json_quote(actor), substr(at, 1, 10), substr(at, 12), "
    "json_quote(data), json_quote(entity_id), json_quote(entity_type), json_quote(prev_hash), "
    "json_quote(reason), seq, json_quote(summary)) AS BLOB)) = 1 "
    "AND substr(at, 11, 1) = ' ') IS NOT 1"
)


def _quoted(column: str) -> str:
    value = f"replace(replace({column}, '\\', '\\\\'), '\"', '\\\"')"
    for char, escape in (("\\n", "n"), ("\\r", "r"), ("\\t", "t"), ("\\b", "b"), ("\\f", "f")):
        value = f"replace({value}, E'{char}', '\\{escape}')"
    return f"'\"' || {value} || '\"'"


def _part(field: str) -> str:
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

events = sa.table(
    "audit_events",
    sa.column("id", sa.BigInteger()),
    sa.column("workspace_id", sa.Integer()),
    sa.column("seq", sa.BigInteger()),
    sa.column("at", sa.DateTime()),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("entity_type", sa.String()),
    sa.column("entity_id", sa.String()),
    sa.column("summary", sa.Text()),
    sa.column("data", sa.Text()),
    sa.column("reason", sa.Text()),
    sa.column("prev_hash", sa.String()),
    sa.column("encoded", sa.LargeBinary()),
)
workspaces = sa.table("workspaces", sa.column("id", sa.Integer()), sa.column("key", sa.String()))


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("encoded", sa.LargeBinary(), nullable=True))
    if postgres:  # the append-only trigger refuses the backfill's UPDATE
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete")
    _backfill(bind)
    if postgres:
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("encoded", existing_type=sa.LargeBinary(), nullable=False)
    op.create_index(
        INDEX,
        "audit_events",
        ["workspace_id", "seq"],
        unique=False,
        sqlite_where=sa.text(SQLITE.replace(":", "\\:")),
        postgresql_where=sa.text(POSTGRES.replace(":", "\\:")),
    )


def _backfill(bind: sa.Connection) -> None:
    """Each event's bytes as `encoded_link` writes them from its columns, by id, in batches."""
    keys = {row.id: row.key for row in bind.execute(sa.select(workspaces.c.id, workspaces.c.key))}
    columns = [c for c in events.c if c.name != "encoded"]
    last = 0
    while True:
        rows = bind.execute(
            sa.select(*columns).where(events.c.id > last).order_by(events.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        bind.execute(
            sa.update(events)
            .where(events.c.id == sa.bindparam("row_id"))
            .values(encoded=sa.bindparam("bytes")),
            [{"row_id": row.id, "bytes": _encoded(keys[row.workspace_id], row)} for row in rows],
        )
        last = rows[-1].id


def _encoded(workspace: str, row: sa.Row[tuple[object, ...]]) -> bytes:
    at: datetime = row.at
    return encoded_link(
        workspace=workspace,
        seq=row.seq,
        at=format_at(at if at.tzinfo else at.replace(tzinfo=UTC)),  # SQLite: naive UTC
        actor=row.actor,
        action=row.action,
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        summary=row.summary,
        data=row.data,
        reason=row.reason,
        prev_hash=row.prev_hash,
    )


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.drop_column("encoded")

"""indexes for counts and lists: workflows by workspace, status and key; pending runs, declined
runs and failed deliveries by workspace

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:00:00

`/trame status` counts a workspace's workflows by status, its pending runs and its failed
deliveries; `/trame workflows` lists the first few of each status by key; the daily digest
lists the runs declined since the last one. Without these, SQLite visited every workflow row
of the workspace to count or list them, found the pending runs and the failed deliveries
among every workspace's, and for the digest read every run ever declined, in any workspace,
to keep one workspace's last day. The last three are partial (`trame_bot.store.partial`):
live runs and sent deliveries, most of what is written, enter none of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES: dict[str, tuple[str, list[str], str | None]] = {
    "ix_workflows_workspace_id_status_key": ("workflows", ["workspace_id", "status", "key"], None),
    "ix_runs_pending": ("runs", ["workspace_id"], "state = 'pending'"),
    "ix_runs_declined": ("runs", ["workspace_id", "decided_at"], "state = 'declined'"),
    "ix_outbox_failed": ("outbox", ["workspace_id"], "state = 'failed'"),
}


def upgrade() -> None:
    for name, (table, columns, predicate) in INDEXES.items():
        where = None if predicate is None else sa.text(predicate)
        op.create_index(name, table, columns, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name, (table, _, _) in INDEXES.items():
        op.drop_index(name, table_name=table)

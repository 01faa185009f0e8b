"""indexes for counts: workflows by workspace and status, runs by workspace, state and decision

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:00:00

`/trame status` counts a workspace's workflows by status and its pending runs; the daily
digest lists the runs declined since the last one. Without these, SQLite visited every
workflow row of the workspace to count them, found the pending runs among every workspace's,
and for the digest read every run ever declined, in any workspace, to keep one workspace's
last day.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_workflows_workspace_id_status": ("workflows", ["workspace_id", "status"]),
    "ix_runs_workspace_id_state_decided_at": ("runs", ["workspace_id", "state", "decided_at"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)

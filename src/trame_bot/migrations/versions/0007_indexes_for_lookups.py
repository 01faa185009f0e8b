"""indexes for lookups that read whole tables: workspaces by ops channel, connector alerts by
outage and by workspace, runs by workflow and plan

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 16:00:00

Every command finds its workspace by channel, as its approvals channel or its ops channel;
with only the first indexed, both databases read every workspace to answer the OR. An outage
alert's recovery notice is found by the outage it closes (on every click of the alert's
buttons), and a workspace's alerts are listed newest first: both read every workspace's
alerts. A pilot's record (every `/trame status` of a pilot) reads the runs of its current plan,
and found them among every run its workflow ever had: 15 ms on SQLite after 100,000 runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_workspaces_ops_channel": ("workspaces", ["ops_channel"]),
    "ix_connector_alerts_outage_id": ("connector_alerts", ["outage_id"]),
    "ix_connector_alerts_workspace_id_id": ("connector_alerts", ["workspace_id", "id"]),
    "ix_runs_workflow_id_fingerprint": ("runs", ["workflow_id", "fingerprint"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)

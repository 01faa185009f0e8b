"""workspaces: an index on ops_channel

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 16:00:00

Every command finds its workspace by channel, as its approvals channel or its ops channel.
With only the first indexed, both databases read every workspace to answer the OR.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_workspaces_ops_channel", "workspaces", ["ops_channel"])


def downgrade() -> None:
    op.drop_index("ix_workspaces_ops_channel", table_name="workspaces")

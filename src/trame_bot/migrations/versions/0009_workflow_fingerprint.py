"""workflows: the fingerprint of the current plan, stored

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 23:59:00

A pilot's record is read from the events of the runs requested with the workflow's current
plan, which runs carry as its fingerprint. With the workflow's own fingerprint stored, the
record is one subquery of the statement that reads the workflow (`trame_bot.store.pilot`),
instead of a second statement whose parameter Python computed from the plan on every
`/trame status`. Existing workflows get the fingerprint their plan and version give.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from trame_bot.domain.plan import fingerprint, steps_from_dicts

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

workflows = sa.table(
    "workflows",
    sa.column("id", sa.Integer()),
    sa.column("version", sa.Integer()),
    sa.column("steps", sa.JSON()),
    sa.column("fingerprint", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(workflows.c.id, workflows.c.version, workflows.c.steps)).all()
    if rows:
        bind.execute(
            sa.update(workflows)
            .where(workflows.c.id == sa.bindparam("workflow_id"))
            .values(fingerprint=sa.bindparam("plan")),
            [
                {
                    "workflow_id": row.id,
                    "plan": fingerprint(steps_from_dicts(row.steps), row.version),
                }
                for row in rows
            ],
        )
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.alter_column("fingerprint", existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.drop_column("fingerprint")

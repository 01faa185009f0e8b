"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from trame_bot.bootstrap import Deps
from trame_bot.domain.plan import fingerprint, steps_from_dicts
from trame_bot.store.migrate import alembic_config, upgrade_async
from trame_bot.store.models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


async def test_migrations_match_the_models(deps: Deps) -> None:
    async with deps.db.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []


OLD_WORKSPACE = text(
    "INSERT INTO workspaces (key, name, approvals_channel, timezone, digest_time,"
    " approval_ttl_seconds, reminder_after_seconds, allow_self_approval, regulated,"
    " created_at) VALUES ('old', 'Old', 'C0OLD', 'UTC', '09:00', 86400, 14400, false, false,"
    " CURRENT_TIMESTAMP)"
)
"""Workspace `old`, in columns it has had since before revision 0005."""


async def test_existing_workspaces_get_the_default_minimum_of_approved_pilot_runs(
    database_url: str,
) -> None:
    """0005 adds the setting with a server default, so workspaces from before have 1."""
    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0004")
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(OLD_WORKSPACE)
        await upgrade_async(database_url)
        async with engine.connect() as conn:
            minimum = await conn.scalar(
                text("SELECT min_approved_pilot_runs FROM workspaces WHERE key = 'old'")
            )
        assert minimum == 1
    finally:
        await engine.dispose()


async def test_existing_workflows_get_the_fingerprint_of_their_plan(database_url: str) -> None:
    """0009 stores each workflow's fingerprint: the one its plan and version give, which its
    runs carry and its pilot record selects them by."""
    steps = [
        {"name": "Fetch", "tool": "salesforce.query", "connector": "crm", "access": "read"},
        {"name": "Append", "tool": "sheets.append", "connector": "sheets", "access": "write"},
    ]
    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0008")
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(OLD_WORKSPACE)
            await conn.execute(
                text(
                    "INSERT INTO workflows (workspace_id, key, name, status, version, steps,"
                    " reviewers, required_approvals, required_details, prompt, production,"
                    " created_at, updated_at) SELECT id, 'sync', 'Sync', 'pilot', 3, :steps,"
                    " '[]', 1, '{}', '', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP"
                    " FROM workspaces WHERE key = 'old'"
                ),
                {"steps": json.dumps(steps)},
            )
        await upgrade_async(database_url)
        async with engine.connect() as conn:
            stored = await conn.scalar(text("SELECT fingerprint FROM workflows WHERE key = 'sync'"))
        assert stored == fingerprint(steps_from_dicts(steps), 3)
    finally:
        await engine.dispose()

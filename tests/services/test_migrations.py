"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from trame_bot.bootstrap import Deps
from trame_bot.store.models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


async def test_migrations_match_the_models(deps: Deps) -> None:
    async with deps.db.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []

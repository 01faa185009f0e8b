"""Schema migrations (Alembic), run by `trame-bot db upgrade`, the Procfile's release step,
and the tests."""

from __future__ import annotations

import asyncio
from importlib.resources import files

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("trame_bot") / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking: call it from a thread when an event loop is running (`upgrade_async`)."""
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, database_url, revision)

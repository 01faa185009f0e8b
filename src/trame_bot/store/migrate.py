"""Schema migrations (Alembic), run by `trame-bot db upgrade`, the Procfile's release step,
and the tests; and the check every entry point makes before it uses the database."""

from __future__ import annotations

import asyncio
from functools import cache
from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection

from trame_bot.errors import SchemaNotReady
from trame_bot.store.database import Database

FIX = "run `trame-bot db upgrade`"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("trame_bot") / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking: call it from a thread when an event loop is running (`upgrade_async`)."""
    try:
        command.upgrade(alembic_config(database_url), revision)
    except CommandError as exc:  # e.g. the database is at a revision these scripts lack
        raise SchemaNotReady(
            f"cannot migrate the database: {exc} (was it migrated by another version of trame-bot?)"
        ) from exc


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, database_url, revision)


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(""))


def head_revision() -> str:
    """The revision this package's code expects: the last migration it ships."""
    head = _scripts().get_current_head()
    assert head is not None, "the package ships its migrations"
    return head


async def check_schema(db: Database) -> None:
    """Raises `SchemaNotReady`, naming what is wrong and the fix, unless the database is at
    the revision this package ships; `Unavailable` when the database does not answer."""
    async with db.reading() as session:
        connection = await session.connection()
        current = await connection.run_sync(_current_revision)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaNotReady(f"the database has no trame-bot schema yet: {FIX} to create it")
    try:
        known = _scripts().get_revision(current) is not None
    except CommandError:  # Alembic's word for a revision its scripts do not have
        known = False
    if known:
        raise SchemaNotReady(
            f"the database schema is out of date (revision {current}; this trame-bot needs "
            f"{head}): {FIX}"
        )
    raise SchemaNotReady(
        f"the database schema is at revision {current}, which this trame-bot does not know "
        f"(it needs {head}); another version of trame-bot migrated it: run that one, or upgrade "
        "this one"
    )


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()

"""Schema migrations (Alembic), run by `trame-bot db upgrade`, the Procfile's release step,
and the tests; and the check every entry point makes before it uses the database."""

from __future__ import annotations

import asyncio
import re
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from trame_bot.errors import SchemaNotReady
from trame_bot.store.database import Database

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

FIX = "run `trame-bot db upgrade`"


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("trame_bot") / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking: call it from a thread when an event loop is running (`upgrade_async`)."""
    from alembic import command
    from alembic.util import CommandError

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
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(""))


def head_revision() -> str:
    """The revision this package's code expects: the last migration it ships."""
    head = _scripts().get_current_head()
    assert head is not None, "the package ships its migrations"
    return head


_LINK = re.compile(r"^(down_revision|revision)\b[^=\n]*=[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_NAME = re.compile(r"""^(?:None|"([\w-]+)"|'([\w-]+)')$""")


@cache
def _shipped_head() -> str | None:
    """`head_revision`, read from the migrations' text: each names its `revision` and
    `down_revision` on a line of its own, and the head is the one no other follows. Loading
    Alembic to find it would cost a CLI command more than the command itself; None when a
    script is not written that plainly (then Alembic reads them)."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for script in (files("trame_bot") / "migrations" / "versions").iterdir():
        if not script.name.endswith(".py"):
            continue
        links = dict(_LINK.findall(script.read_text(encoding="utf-8")))
        names = {key: _NAME.match(value) for key, value in links.items()}
        revision, parent = names.get("revision"), names.get("down_revision")
        if revision is None or parent is None or not (name := revision[1] or revision[2]):
            return None
        revisions.add(name)
        if up := parent[1] or parent[2]:
            followed.add(up)
    heads = revisions - followed
    return heads.pop() if len(heads) == 1 else None


async def check_schema(db: Database) -> None:
    """Raises `SchemaNotReady`, naming what is wrong and the fix, unless the database is at
    the revision this package ships; `Unavailable` when the database does not answer.
    Alembic is only loaded when the database is not at the head (to say what it is at)."""
    async with db.reading() as session:
        connection = await session.connection()
        current = await connection.run_sync(_current_revision)
    if current is not None and current == _shipped_head():
        return
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaNotReady(f"the database has no trame-bot schema yet: {FIX} to create it")
    from alembic.util import CommandError

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
    """The revision in Alembic's table, read as Alembic reads it (one row, or none); only
    the unusual case of several is left to Alembic, which refuses it."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    if len(versions) <= 1:
        return str(versions[0][0]) if versions else None
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()

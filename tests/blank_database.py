"""A database nobody has migrated, of the kind the tests run on: a new SQLite file, or, when
TRAME_TEST_DATABASE_URL names a PostgreSQL database, a scratch one beside it
(`<that name>_blank`), dropped afterwards."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from trame_bot.config import async_database_url

PG_URL = os.environ.get("TRAME_TEST_DATABASE_URL")


@contextmanager
def blank_database(tmp_path: Path) -> Iterator[str]:
    if not PG_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'blank.db'}"
        return
    server = make_url(async_database_url(PG_URL))
    name = f"{server.database}_blank"
    _admin(server.render_as_string(hide_password=False), f'DROP DATABASE IF EXISTS "{name}"')
    _admin(server.render_as_string(hide_password=False), f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(
            server.render_as_string(hide_password=False),
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        )


def _admin(url: str, statement: str) -> None:
    async def run() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(statement))
        await engine.dispose()

    asyncio.run(run())

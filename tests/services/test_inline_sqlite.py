"""SQLite statements on the event loop's thread (`store.inline`): the loop keeps turning while
another process holds the write lock, the transaction goes through once it is released, and
a lock held past the busy timeout is `Unavailable`, with nothing written."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.errors import Unavailable
from trame_bot.services import workspaces
from trame_bot.services.context import Context
from trame_bot.store.database import Database


@pytest.fixture
def sqlite_file(database_url: str) -> str:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite only: PostgreSQL has no inline connection")
    return database_url.split("///", 1)[1]


async def _ticks_while(work: asyncio.Task[object], every: float = 0.005) -> int:
    """How often the loop ran a 5 ms timer until `work` finished: a loop stopped by a
    blocking call ticks rarely."""
    ticks = 0
    while not work.done():
        await asyncio.sleep(every)
        ticks += 1
    return ticks


def _hold_write_lock(path: str, seconds: float, holding: threading.Event) -> None:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    holding.set()
    threading.Event().wait(seconds)
    other.execute("ROLLBACK")
    other.close()


async def test_a_writer_waits_for_another_process_without_stopping_the_loop(
    deps: Deps, sqlite_file: str
) -> None:
    await f.governed_workspace(deps)
    holding = threading.Event()
    holder = asyncio.create_task(asyncio.to_thread(_hold_write_lock, sqlite_file, 0.4, holding))
    await asyncio.to_thread(holding.wait, 5)
    change = asyncio.create_task(
        workspaces.set_role(deps.ctx, "acme", "U0LATER", f.Role.MEMBER, f.CLI)
    )
    ticks = await _ticks_while(change)  # type: ignore[arg-type]
    await holder
    assert (await change) is not None
    # 0.4 s of waiting at 5 ms a tick: a loop stopped by a busy handler ticks once or twice,
    # one that keeps turning ticks dozens of times (5 leaves room for a loaded machine).
    assert ticks >= 5


async def test_a_lock_held_past_the_busy_timeout_is_unavailable(
    deps: Deps, sqlite_file: str
) -> None:
    await f.governed_workspace(deps)
    db = Database(f"sqlite+aiosqlite:///{sqlite_file}", busy_timeout_ms=150)
    ctx = Context(db, deps.clock)
    holding = threading.Event()
    holder = asyncio.create_task(asyncio.to_thread(_hold_write_lock, sqlite_file, 0.6, holding))
    try:
        await asyncio.to_thread(holding.wait, 5)
        with pytest.raises(Unavailable, match="try again"):
            await workspaces.set_role(ctx, "acme", "U0LATER", f.Role.MEMBER, f.CLI)
        await holder
        async with db.lookup() as session:
            found = await session.scalar(
                text("SELECT count(*) FROM members WHERE slack_user_id = 'U0LATER'")
            )
        assert found == 0
    finally:
        await db.dispose()


async def test_lookups_and_transactions_see_each_others_commits(
    deps: Deps, sqlite_file: str
) -> None:
    await f.governed_workspace(deps)
    await workspaces.set_role(deps.ctx, "acme", "U0NEW", f.Role.ADMIN, f.CLI)
    async with deps.db.lookup() as session:
        role = await session.scalar(text("SELECT role FROM members WHERE slack_user_id = 'U0NEW'"))
    async with deps.db.reading() as session:
        same = await session.scalar(text("SELECT role FROM members WHERE slack_user_id = 'U0NEW'"))
    assert role == same == "admin"


async def test_a_new_file_is_switched_to_wal_without_stopping_the_loop(
    deps: Deps, sqlite_file: str, tmp_path: Path
) -> None:
    """A file not yet in WAL mode (never migrated, or made by another tool) must be had alone
    for a moment to switch; a reader elsewhere is waited for on the loop."""
    path = str(tmp_path / "fresh.db")
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    holding = threading.Event()

    def read_a_while() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN")
        other.execute("SELECT count(*) FROM t").fetchall()
        holding.set()
        threading.Event().wait(0.4)
        other.execute("COMMIT")
        other.close()

    reader = asyncio.create_task(asyncio.to_thread(read_a_while))
    await asyncio.to_thread(holding.wait, 5)
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:

        async def look() -> object:
            async with db.lookup() as session:
                return await session.scalar(text("PRAGMA journal_mode"))

        looking = asyncio.create_task(look())
        ticks = await _ticks_while(looking)  # type: ignore[arg-type]
        assert await looking == "wal"
        assert ticks >= 5  # see above: a stopped loop ticks once or twice
    finally:
        await reader
        await db.dispose()

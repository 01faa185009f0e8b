"""A command that cannot finish within Slack's 3 seconds (here: another connection holds the
workflow's lock) is acknowledged in time, and its answer follows through the response URL."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from tests import factories as f
from tests.harness import Bot, eventually
from trame_bot.domain.enums import Status
from trame_bot.services import workflows

HELD_FOR = 2.6
"""Longer than the listener's 2 s budget, shorter than the 5 s a writer waits for a lock."""


@contextmanager
def _lock_held_elsewhere(database_url: str) -> Iterator[threading.Event]:
    """Another connection holds the write lock (SQLite) or the workflows' rows (PostgreSQL)
    for `HELD_FOR` seconds, from a thread, as another process would."""
    holding = threading.Event()

    def hold_sqlite() -> None:
        other = sqlite3.connect(database_url.split("///", 1)[1], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        holding.set()
        threading.Event().wait(HELD_FOR)
        other.execute("ROLLBACK")
        other.close()

    async def hold_postgres() -> None:
        other = await asyncpg.connect(
            database_url.replace("postgresql+asyncpg://", "postgresql://")
        )
        async with other.transaction():
            await other.execute("SELECT id FROM workflows FOR UPDATE")
            holding.set()
            await asyncio.sleep(HELD_FOR)
        await other.close()

    def hold() -> None:
        if database_url.startswith("sqlite"):
            hold_sqlite()
        else:
            asyncio.run(hold_postgres())

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        yield holding
    finally:
        thread.join()


async def test_a_slow_command_is_acked_in_time_and_answered_after(
    bot: Bot, acme: str, database_url: str
) -> None:
    with _lock_held_elsewhere(database_url) as holding:
        await asyncio.to_thread(holding.wait, 5)
        answer = await bot.command("pause invoice-sync client asked", user=f.MEMBER, channel=acme)
    # Bolt answers 404 "unhandled request" once its 3 s pass without an ack: a 200 carrying the
    # note is the ack in time.
    assert answer.status == 200
    assert "answer follows" in answer.text

    async def answered() -> bool:
        return any("is paused" in (r.text or "") for r in bot.fake.responses)

    await eventually(answered)
    workflow = await workflows.get_workflow(bot.deps.ctx, "acme", "invoice-sync")
    assert workflow.status is Status.PAUSED


async def test_a_quick_command_is_answered_in_its_ack(bot: Bot, acme: str) -> None:
    answer = await bot.command("pause invoice-sync client asked", user=f.MEMBER, channel=acme)
    assert "is paused" in answer.text
    assert not bot.fake.responses

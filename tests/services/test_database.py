"""The database edge: outages become `Unavailable`, concurrent idempotent requests one run."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import func, select

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.errors import Unavailable
from trame_bot.services import workspaces
from trame_bot.services.context import Context
from trame_bot.store import workflows as workflow_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.database import Database
from trame_bot.store.models import AuditEvent


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
        "sqlite+aiosqlite:////nonexistent-dir/trame.db",
    ],
)
async def test_an_unreachable_database_is_unavailable_not_a_crash(deps: Deps, url: str) -> None:
    db = Database(url)
    try:
        with pytest.raises(Unavailable, match="try again"):
            await workspaces.list_workspaces(Context(db, deps.clock))
        with pytest.raises(Unavailable):
            await db.ping()
    finally:
        await db.dispose()
        await _aiosqlite_threads_finished()


async def _aiosqlite_threads_finished() -> None:
    """A failed aiosqlite connect leaves its worker thread to wind down; let it finish while
    this test's event loop still runs, or it reports into a closed loop."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and "connection_worker" in thread.name:
            await asyncio.to_thread(thread.join, 5)


async def test_concurrent_requests_with_one_idempotency_key_make_one_run(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps)
    made = await asyncio.gather(*(f.request(deps, idempotency_key="same") for _ in range(10)))
    assert len({run.id for run in made}) == 1
    async with deps.db.reading() as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "run.requested")
        )
    assert count == 1


async def test_a_transaction_postgresql_ends_in_a_deadlock_is_told_to_try_again(
    deps: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    """Two transactions lock two workflows in opposite orders (what the lock order prevents
    in the product, forced here): PostgreSQL ends one of them, which is `Unavailable` with a
    message to try again rather than a driver error, and the other commits."""
    if deps.db.is_sqlite:
        pytest.skip("SQLite's write transactions hold the whole database: no row deadlocks")
    await f.governed_workspace(deps)
    await f.workflow(deps, key="invoice-sync")
    await f.workflow(deps, key="lead-digest")
    first_locked = [asyncio.Event(), asyncio.Event()]

    async def lock_both(mine: int) -> None:
        order = ["invoice-sync", "lead-digest"][:: 1 if mine == 0 else -1]
        async with deps.db.transaction() as session:
            workspace = await workspace_store.get(session, "acme")
            await workflow_store.get(session, workspace.id, order[0], lock=True)
            first_locked[mine].set()
            await first_locked[1 - mine].wait()
            await workflow_store.get(session, workspace.id, order[1], lock=True)

    results = await asyncio.gather(lock_both(0), lock_both(1), return_exceptions=True)

    ended = [r for r in results if isinstance(r, BaseException)]
    assert len(ended) == 1, results
    assert isinstance(ended[0], Unavailable)
    assert "nothing was changed, try again" in ended[0].message
    assert "SQLSTATE 40P01" in caplog.text


async def test_a_burst_past_the_pool_waits_for_its_connections_and_keeps_them(deps: Deps) -> None:
    """More requests at once than the pool holds wait for a pooled connection instead of
    opening more (an overflow connection was closed when given back: a new PostgreSQL backend
    for every few requests under load), and the next burst finds the same ones."""
    if deps.db.is_sqlite:
        pytest.skip("SQLite opens files, not server connections")
    db = Database(deps.db.url, connections=3)
    try:

        async def backend() -> int:
            async with db.reading() as session:
                pid = await session.scalar(select(func.pg_backend_pid(), func.pg_sleep(0.05)))
            return int(pid)

        first = set(await asyncio.gather(*(backend() for _ in range(12))))
        second = set(await asyncio.gather(*(backend() for _ in range(12))))
    finally:
        await db.dispose()
    assert len(first) == 3
    assert second == first

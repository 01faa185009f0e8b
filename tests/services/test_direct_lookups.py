"""Reads on the driver's own connection (`store.direct`) give what a session would: the same
values with the same types, on SQLite and PostgreSQL; and an unreachable database is
`Unavailable` there too."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import sqlite

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import DeclineCategory, Verdict
from trame_bot.errors import Unavailable
from trame_bot.services import decisions as decision_service
from trame_bot.store import card
from trame_bot.store.database import Database
from trame_bot.store.direct import Statement
from trame_bot.store.models import Run


async def test_a_card_row_is_typed_as_a_session_reads_it(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps)
    run = await f.request(deps, details={"invoice": "INV-1", "amount": 12.5})
    await decision_service.decide(
        deps.ctx,
        run.id,
        Actor.slack(f.OTHER),
        Verdict.DECLINE,
        reason="wrong amount",
        category=DeclineCategory.WRONG_DATA,
    )
    async with deps.db.lookups.connection() as lookup:
        direct = await card.card_of(lookup, run.id)
    async with deps.db.reading() as session:
        by_session = (await session.execute(card._CARD.query, {"run": run.id})).one()
    assert direct is not None
    assert direct._asdict() == by_session._asdict()
    (decision,) = card.decisions_of(direct)
    assert (decision.user, decision.verdict, decision.category) == (
        f.OTHER,
        Verdict.DECLINE,
        DeclineCategory.WRONG_DATA.value,
    )
    assert decision.at.tzinfo is not None
    for ours, theirs in zip(direct, by_session, strict=True):
        assert type(ours) is type(theirs)
    assert direct.requested_at.tzinfo is not None


async def test_a_json_integer_beyond_64_bits_reads_back_as_that_integer(deps: Deps) -> None:
    """The engines read JSON through `json_text` (msgspec): it must not become a float, as
    orjson would make it."""
    await f.governed_workspace(deps)
    await f.workflow(deps)
    details = {"big": 10**25, "low": -(2**63) - 1, "id": 2**64 - 1, "amount": 12.5}
    run = await f.request(deps, details=details)
    async with deps.db.lookups.connection() as lookup:
        direct = await card.card_of(lookup, run.id)
    async with deps.db.reading() as session:
        stored = await session.get(Run, run.id)
    assert direct is not None
    assert stored is not None
    for read in (direct.details, stored.details):
        assert {key: (value, type(value)) for key, value in read.items()} == {
            key: (value, type(value)) for key, value in details.items()
        }


def test_an_expanding_in_is_refused_when_compiled() -> None:
    """It would be respelled on every call; `functions.in_list` binds one JSON array."""
    query = select(Run.id).where(Run.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="expanding IN"):
        Statement(query).compiled(sqlite.dialect())


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
        "sqlite+aiosqlite:////nonexistent-dir/trame.db",
    ],
)
async def test_an_unreachable_database_is_unavailable(url: str) -> None:
    db = Database(url)
    try:
        with pytest.raises(Unavailable, match="try again"):
            async with db.lookups.connection() as lookup:
                await card.card_of(lookup, "r-1")
    finally:
        await db.dispose()


async def test_lookups_on_postgresql_never_start_parallel_workers(deps: Deps) -> None:
    """A lookup reads a few index ranges: the workers of a parallel plan, which PostgreSQL's
    estimates can pick over a large table, cost more to start than the read."""
    if deps.db.is_sqlite:
        pytest.skip("SQLite has no parallel plans")
    setting = Statement(select(func.current_setting("max_parallel_workers_per_gather")))
    async with deps.db.lookups.connection() as lookup:
        assert [tuple(row) for row in await lookup(setting, {})] == [("0",)]


async def test_lookups_on_a_sqlite_file_share_one_connection_and_see_each_commit(
    deps: Deps,
) -> None:
    """On SQLite's file, every lookup runs on one connection kept out of the pool: lookups
    interleaved on the loop each get their own statement's rows, and a decision committed
    meanwhile is seen by the next lookup (a lookup keeps no read open)."""
    if not deps.db.is_sqlite:
        pytest.skip("PostgreSQL's lookups take pooled connections")
    await f.governed_workspace(deps)
    await f.workflow(deps)
    runs = [(await f.request(deps)).id for _ in range(3)]

    async def state_of(run_id: str) -> tuple[str, str]:
        async with deps.db.lookups.connection() as lookup:
            await asyncio.sleep(0)  # the other lookups start on the same connection
            row = await card.card_of(lookup, run_id)
            await asyncio.sleep(0)
            assert row is not None
            return row.id, row.state

    assert await asyncio.gather(*(state_of(run) for run in runs)) == [
        (run, "pending") for run in runs
    ]
    await decision_service.decide(deps.ctx, runs[0], Actor.slack(f.OTHER), Verdict.APPROVE)
    assert await state_of(runs[0]) == (runs[0], "approved")
    assert deps.db.lookups.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    await deps.db.lookups.close()
    assert deps.db.lookups.engine.pool.checkedout() == 0  # type: ignore[attr-defined]

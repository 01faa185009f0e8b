"""Migration 0006 on a database with history: the bytes of every existing event are filled
in as their hash covers them, an event edited before it is still named, and the downgrade
gives the events back as they were."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.services.test_audit import append_tricky, seeded, tamper
from trame_bot.bootstrap import Deps
from trame_bot.services import audit
from trame_bot.store import audit_verify as verify_store
from trame_bot.store.migrate import alembic_config, upgrade_async

EVENTS = "SELECT seq, summary, hash FROM audit_events ORDER BY workspace_id, seq"


async def _rows(database_url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


async def test_upgrade_fills_in_the_bytes_and_downgrade_gives_the_events_back(
    deps: Deps, database_url: str
) -> None:
    await seeded(deps)
    await append_tricky(deps)  # text SQL cannot spell as Python does, not NFC among it
    written = await _rows(database_url, "SELECT seq, encoded FROM audit_events ORDER BY seq")
    before = await _rows(database_url, EVENTS)
    config = alembic_config(database_url)
    try:
        await asyncio.to_thread(command.downgrade, config, "0005")
        assert await _rows(database_url, EVENTS) == before
        await upgrade_async(database_url)
        # The bytes are those the append wrote, so every hash still holds.
        assert await _rows(database_url, "SELECT seq, encoded FROM audit_events ORDER BY seq") == [
            (seq, bytes(encoded)) for seq, encoded in written
        ]
        report = await audit.verify_chain(deps.ctx, "acme")
        assert report.ok, report.problem
        assert report.checked == len(before)
        await asyncio.to_thread(command.downgrade, config, "0005")
        assert await _rows(database_url, EVENTS) == before
    finally:
        await upgrade_async(database_url)


async def test_an_event_edited_before_the_upgrade_is_still_named(
    deps: Deps, database_url: str
) -> None:
    """The backfill encodes the columns as they are: an edited event gets bytes that do not
    hash to its hash, so the edit is not laundered into the new column."""
    await seeded(deps)
    config = alembic_config(database_url)
    try:
        await asyncio.to_thread(command.downgrade, config, "0005")
        await tamper(deps, "UPDATE audit_events SET summary = 'nothing to see' WHERE seq = 5")
        await upgrade_async(database_url)
        report = await audit.verify_chain(deps.ctx, "acme")
        assert report.bad_seq == 5
        assert "edited" in (report.problem or "")
        async with deps.db.reading() as session:  # its bytes spell its columns: not in the index
            assert await verify_store.mismatched(session, 1, full=True) == []
    finally:
        await upgrade_async(database_url)

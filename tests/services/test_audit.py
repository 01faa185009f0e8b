"""The audit log: tamper evidence, append-only enforcement, filters and streamed exports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Status
from trame_bot.errors import Forbidden
from trame_bot.services import audit, workflows
from trame_bot.services.audit import ExportFormat
from trame_bot.store.audit import AuditFilter


async def seeded(deps: Deps) -> int:
    """A workspace with some history; returns the number of events."""
    await f.governed_workspace(deps)
    await f.workflow(deps)
    for target in (Status.DRAFT, Status.PILOT):
        await workflows.change_status(
            deps.ctx, "acme", "invoice-sync", target, Actor.slack(f.MEMBER)
        )
    report = await audit.verify_chain(deps.ctx, "acme")
    assert report.ok
    return report.checked


async def tamper(deps: Deps, *statements: str) -> None:
    """Change rows behind the application's back, as an attacker with database access would."""
    async with deps.db.transaction() as session:
        if deps.db.dialect == "postgresql":
            # The append-only trigger refuses this; a superuser can switch triggers off.
            await session.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            await session.execute(text(statement))


TAMPERING: dict[str, tuple[list[str], int, str]] = {
    "edit a summary": (
        ["UPDATE audit_events SET summary = 'nothing to see' WHERE seq = 5"],
        5,
        "edited",
    ),
    "edit the actor": (
        ["UPDATE audit_events SET actor = 'slack:U0EVIL' WHERE seq = 3"],
        3,
        "edited",
    ),
    "delete one": (["DELETE FROM audit_events WHERE seq = 4"], 4, "missing"),
    "delete the last": (
        ["DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)"],
        -1,
        "removed",
    ),
    "swap two": (
        [
            "UPDATE audit_events SET seq = -1 WHERE seq = 6",
            "UPDATE audit_events SET seq = 6 WHERE seq = 7",
            "UPDATE audit_events SET seq = 7 WHERE seq = -1",
        ],
        6,
        "moved",
    ),
    "edit with a made-up hash": (
        [f"UPDATE audit_events SET summary = 'forged', hash = '{'a' * 64}' WHERE seq = 2"],
        2,
        "edited",
    ),
    "relink after a deletion": (
        [
            "DELETE FROM audit_events WHERE seq = 4",
            "UPDATE audit_events SET seq = seq - 1 WHERE seq > 4",
        ],
        4,
        "does not follow",
    ),
}


@pytest.mark.parametrize("case", TAMPERING, ids=list(TAMPERING))
async def test_verify_names_the_tampered_event(deps: Deps, case: str) -> None:
    total = await seeded(deps)
    statements, seq, words = TAMPERING[case]
    await tamper(deps, *statements)
    report = await audit.verify_chain(deps.ctx, "acme")
    assert not report.ok
    assert report.bad_seq == (total if seq == -1 else seq)
    assert words in (report.problem or "")


async def test_postgres_refuses_update_and_delete_of_audit_rows(deps: Deps) -> None:
    if deps.db.dialect != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL")
    await seeded(deps)
    for statement in (
        "UPDATE audit_events SET summary = 'x' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
        "TRUNCATE audit_events CASCADE",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with deps.db.transaction() as session:
                await session.execute(text(statement))
    assert (await audit.verify_chain(deps.ctx, "acme")).ok


async def collect(chunks: Awaitable[object]) -> str:
    iterator = await chunks  # type: ignore[misc]
    return "".join([chunk async for chunk in iterator])  # type: ignore[attr-defined]


async def test_export_csv_and_jsonl_filtered_by_entity_and_time(
    deps: Deps, clock: FakeClock
) -> None:
    await seeded(deps)
    clock.advance(timedelta(days=10))
    await workflows.change_status(
        deps.ctx, "acme", "invoice-sync", Status.PAUSED, Actor.slack(f.MEMBER), reason="late"
    )
    where = AuditFilter("workflow", "invoice-sync", since=clock.now() - timedelta(days=1))
    rows = list(
        csv.DictReader(
            io.StringIO(
                await collect(
                    audit.export_events(
                        deps.ctx, "acme", where, ExportFormat.CSV, Actor.slack(f.ADMIN)
                    )
                )
            )
        )
    )
    assert [r["action"] for r in rows] == ["workflow.status_changed"]
    assert rows[0]["reason"] == "late"
    everything = await collect(
        audit.export_events(
            deps.ctx,
            "acme",
            AuditFilter("workflow", "invoice-sync"),
            ExportFormat.JSONL,
            Actor.cli(),
        )
    )
    lines = [json.loads(line) for line in everything.splitlines()]
    assert [line["action"] for line in lines] == ["workflow.created"] + [
        "workflow.status_changed"
    ] * 3
    assert all(len(line["hash"]) == 64 for line in lines)
    latest = await audit.list_events(deps.ctx, "acme", AuditFilter(), Actor.cli(), limit=1)
    assert latest[0].action == "audit.exported"


async def test_only_owners_and_admins_read_the_audit_log(deps: Deps) -> None:
    await seeded(deps)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: audit.list_events(deps.ctx, "acme", AuditFilter(), Actor.slack(f.MEMBER)),
        lambda: audit.export_events(
            deps.ctx, "acme", AuditFilter(), ExportFormat.CSV, Actor.slack(f.MEMBER)
        ),
        lambda: audit.list_events(deps.ctx, "acme", AuditFilter(), Actor.slack("U0STRANGER")),
    ]
    for call in calls:
        with pytest.raises(Forbidden):
            await call()
    assert await audit.list_events(deps.ctx, "acme", AuditFilter(), Actor.slack(f.ADMIN))

"""The audit log: tamper evidence, append-only enforcement, filters and streamed exports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, NoResultFound

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.domain.audit_chain import encoded_hash, encoded_link
from trame_bot.domain.enums import Status
from trame_bot.errors import Forbidden
from trame_bot.services import audit, workflow_status
from trame_bot.services.audit import ExportFormat
from trame_bot.store import audit as audit_store
from trame_bot.store import audit_export as export_store
from trame_bot.store import audit_verify as verify_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.audit import AuditFilter
from trame_bot.store.models import AuditEvent, AuditHead


async def seeded(deps: Deps) -> int:
    """A workspace with some history; returns the number of events."""
    await f.governed_workspace(deps)
    await f.workflow(deps)
    for target in (Status.DRAFT, Status.PILOT):
        await workflow_status.change_status(
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
    await workflow_status.change_status(
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


TRICKY_TEXT = [
    "plain ascii",
    'quotes " and \\ backslashes',
    "controls \x01\x1f\b\f\n\r\t and \x7f",
    "unicode été 日本 🎉 \u2028",
    "decomposed e\u0301",  # not NFC: the hash covers its NFC form, the column keeps it as typed
]


async def append_tricky(deps: Deps) -> None:
    async with deps.db.transaction() as session:
        ws = await workspace_store.get(session, "acme")
        for n, text_ in enumerate(TRICKY_TEXT):
            await audit_store.append(
                session,
                ws,
                at=deps.clock.now(),
                actor=f"slack:{text_}",
                action="test.tricky",
                entity_type="workspace",
                entity_id=text_,
                summary=text_,
                data={"text": text_, "n": n},
                reason=None if n % 2 else text_,
            )


async def test_each_event_stores_the_bytes_its_hash_covers(deps: Deps) -> None:
    await f.workspace(deps)
    await append_tricky(deps)
    async with deps.db.reading() as session:
        ws = await workspace_store.get(session, "acme")
        chain = [row async for rows in verify_store.stream_chain(session, ws.id) for row in rows]
        columns = [
            row
            async for rows in export_store.stream_exported(session, ws.id, AuditFilter())
            for row in rows
        ]
        suspects = await verify_store.mismatched(session, ws.id)
        assert await verify_store.mismatched(session, ws.id, full=True) == suspects
    assert len(chain) == len(columns) > len(TRICKY_TEXT)
    careful = []
    for (seq, prev, encoded, stored), row in zip(chain, columns, strict=True):
        _, at, actor, action, etype, eid, summary, reason, data, _, _ = row
        assert encoded == encoded_link(
            workspace="acme",
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            entity_type=etype,
            entity_id=eid,
            summary=summary,
            data=data,
            reason=reason,
            prev_hash=prev,
        )
        assert encoded_hash(encoded) == stored
        # Only Python normalises to NFC; PostgreSQL's immutable quoting leaves the control
        # characters without a short escape raw. The database names those rows, verify
        # encodes them in Python.
        text_ = actor + eid + summary + (reason or "") + data
        if "e\u0301" in summary or (
            deps.db.dialect == "postgresql"
            and any(ord(c) < 0x20 for c in text_ if c not in "\b\f\n\r\t")
        ):
            careful.append(seq)
    assert suspects == careful
    assert (await audit.verify_chain(deps.ctx, "acme")).ok
    assert (await audit.verify_chain(deps.ctx, "acme", full=True)).ok


async def test_an_edit_of_an_unnormalised_event_is_still_caught(deps: Deps) -> None:
    await f.workspace(deps)
    await append_tricky(deps)
    report = await audit.verify_chain(deps.ctx, "acme")
    assert report.ok
    await tamper(
        deps, "UPDATE audit_events SET reason = 'changed' WHERE summary LIKE 'decomposed%'"
    )
    report = await audit.verify_chain(deps.ctx, "acme")
    assert report.bad_seq == report.checked + 1
    assert "edited" in (report.problem or "")


async def test_appends_are_written_before_a_query_and_forgotten_on_rollback(deps: Deps) -> None:
    ws = await f.workspace(deps)
    before = (await audit.verify_chain(deps.ctx, "acme")).checked

    count = select(func.count()).select_from(AuditEvent).where(AuditEvent.workspace_id == ws.id)
    async with deps.db.transaction() as session:
        await f.audit_event(deps, session, "one", ws)
        await f.audit_event(deps, session, "two", ws)
        assert await session.scalar(count) == before + 2  # the ORM query flushed them
        await f.audit_event(deps, session, "three", ws)

    async def rolled_back() -> None:
        async with deps.db.transaction() as session:
            await f.audit_event(deps, session, "rolled back", ws)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await rolled_back()
    async with deps.db.transaction() as session:
        await f.audit_event(deps, session, "four", ws)
    report = await audit.verify_chain(deps.ctx, "acme")
    assert report.ok, report.problem
    assert report.checked == before + 4


async def python_export(deps: Deps, where: AuditFilter, fmt: ExportFormat) -> str:
    """The export as Python's csv module and `jsonl_line` write it: the reference."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if fmt is ExportFormat.CSV:
        writer.writerow(audit.COLUMNS)
    async with deps.db.reading() as session:
        ws = await workspace_store.get(session, "acme")
        async for rows in export_store.stream_exported(session, ws.id, where):
            for row in rows:
                if fmt is ExportFormat.CSV:
                    writer.writerow(row)
                else:
                    buffer.write(audit.jsonl_line(row, "acme"))
    return buffer.getvalue()


async def test_the_database_writes_the_export_as_python_would(deps: Deps) -> None:
    await f.workspace(deps)
    await append_tricky(deps)
    async with deps.db.transaction() as session:
        ws = await workspace_store.get(session, "acme")
        for summary, reason in (("", ""), ("carriage\rreturn", "a\r\nb")):
            await audit_store.append(
                session,
                ws,
                at=deps.clock.now(),
                actor="cli",
                action="test.edges",
                entity_type="workspace",
                entity_id="acme",
                summary=summary,
                reason=reason,
            )
    where = AuditFilter(since=deps.clock.now() - timedelta(days=1))
    for fmt in ExportFormat:
        expected = await python_export(deps, where, fmt)
        exported = await collect(audit.export_events(deps.ctx, "acme", where, fmt, Actor.cli()))
        if fmt is ExportFormat.JSONL:
            assert exported == expected
            continue
        # The same values. Python leaves a lone CR unquoted (its own reader then splits the
        # field), the database quotes it; PostgreSQL quotes an empty text ("").
        assert list(csv.reader(io.StringIO(exported, newline=""))) == list(
            csv.reader(
                io.StringIO(expected.replace("carriage\rreturn", '"carriage\rreturn"'), newline="")
            )
        )
        plain = [line for line in expected.splitlines(keepends=True) if "\r" not in line]
        if deps.db.dialect == "sqlite":
            assert [
                line for line in exported.splitlines(keepends=True) if "\r" not in line
            ] == plain
        else:
            assert exported.splitlines()[:2] == expected.splitlines()[:2]


@pytest.mark.parametrize("events", [1, 2])
async def test_an_append_to_a_chain_without_a_head_fails_and_writes_nothing(
    deps: Deps, events: int
) -> None:
    """Every workspace's chain starts with its head; were it missing, its events must not
    vanish silently (on PostgreSQL a lone event's statement would otherwise insert nothing)."""
    await f.workspace(deps)
    async with deps.db.transaction() as session:
        workspace = await workspace_store.get(session, "acme")
        await session.execute(AuditHead.__table__.delete())
    before = await _event_count(deps)

    async def append_events() -> None:
        async with deps.db.transaction() as session:
            for n in range(events):
                await f.audit_event(deps, session, f"#{n}", workspace)

    with pytest.raises(NoResultFound):
        await append_events()
    assert await _event_count(deps) == before


async def _event_count(deps: Deps) -> int:
    async with deps.db.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)

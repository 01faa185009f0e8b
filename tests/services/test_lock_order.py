"""Every write transaction locks in one order: the workflow, then its runs, then the audit
chain's head. Each test holds one side's transaction open at the point that matters while the
other side runs, so what PostgreSQL would interleave by chance happens every time (on SQLite
a write transaction holds the whole database, and the other side simply waits)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text

from tests import factories as f
from tests.harness import eventually
from trame_bot.bootstrap import Deps
from trame_bot.domain.actors import Actor
from trame_bot.domain.alerts import AlertTarget
from trame_bot.domain.enums import Role, RunState, Status
from trame_bot.domain.health import Report
from trame_bot.domain.roles import check_at_least
from trame_bot.services import alerts, audit, connectors, naming, workflow_status, workspaces
from trame_bot.services.access import workflow_for_run, workflow_with_role
from trame_bot.store import audit as audit_store
from trame_bot.store import pending
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.database import Database
from trame_bot.store.models import AuditEvent, Run, Workflow
from trame_bot.store.run_scope import ByApiKey

ADMIN = Actor.slack(f.ADMIN)
SQLITE_HELD = 0.3
"""On SQLite, seconds the test keeps its transaction open once the other side has started
(it waits for the process's write turn, which nothing outside shows)."""


async def _other_side_waits(deps: Deps) -> None:
    """Returns once the other side waits for a lock the test's transaction holds: on
    PostgreSQL, seen in `pg_stat_activity` (so the test never runs ahead of it)."""
    if deps.db.is_sqlite:
        await asyncio.sleep(SQLITE_HELD)
        return

    async def waiting() -> bool:
        async with deps.db.reading() as session:
            count = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            )
        return bool(count)

    await eventually(waiting, within=10)


async def _states(deps: Deps) -> tuple[dict[str, Status], dict[RunState, int]]:
    async with deps.db.reading() as session:
        statuses = dict((await session.execute(select(Workflow.key, Workflow.status))).all())
        runs = dict(
            (await session.execute(select(Run.state, func.count()).group_by(Run.state))).all()
        )
    return statuses, runs


async def test_a_trigger_run_requested_while_a_pause_commits_is_refused(deps: Deps) -> None:
    """The request waits for the pause and sees it: without holding its workflow it read the
    status before the pause, wrote its run after it, and left a pending run that the pause's
    cancelling never saw."""
    await f.governed_workspace(deps)
    await f.workflow(deps)  # pilot: a trigger run would wait for reviewers
    async with deps.db.transaction() as session:
        workspace, workflow, role = await workflow_with_role(
            session, "acme", "invoice-sync", ADMIN, lock=True
        )
        await workflow_status.change_status_in(
            session,
            deps.ctx,
            workspace,
            workflow,
            Status.PAUSED,
            ADMIN,
            check_at_least(role, Role.MEMBER, "pausing"),
            reason="incident",
        )
        requested = asyncio.ensure_future(f.request(deps, source="trigger", trigger="nightly"))
        await _other_side_waits(deps)
        assert not requested.done(), "the run request waits for the pause in flight"
    run = await asyncio.wait_for(requested, 10)
    assert run.state is RunState.REJECTED
    assert "paused" in (run.reason or "")
    _, runs = await _states(deps)
    assert runs == {RunState.REJECTED: 1}


@pytest.mark.parametrize("named_by", ["workspace key", "API key"])
async def test_a_pause_waits_for_a_run_request_that_has_read_its_workflow(
    deps: Deps, named_by: str
) -> None:
    """The other way round: a run request holds its workflow from its first read (the read
    `run_requests` makes, `workflow_for_run`: FOR KEY SHARE on PostgreSQL) until its run is
    written, whether it names its workspace or the API's key does. A pause committing
    meanwhile would leave a run decided on the status it replaced, or a pending run its
    cancelling missed."""
    ws = await f.governed_workspace(deps)
    await f.workflow(deps)
    _, token = await workspaces.create_api_key(deps.ctx, "acme", "engine", f.CLI)
    by_key = named_by == "API key"
    named_as: str | ByApiKey = ByApiKey(workspaces.hash_api_key(token)) if by_key else "acme"
    async with deps.db.transaction() as session, deps.db.lookups.connection() as lookup:
        scope, actor = await workflow_for_run(
            session, lookup, named_as, "Invoice sync", None if by_key else ADMIN
        )
        found = (scope.workflow.key, scope.workflow.status, scope.role)
        assert found == ("invoice-sync", Status.PILOT, Role.MEMBER if by_key else Role.ADMIN)
        assert actor.audit_name == ("api:engine" if by_key else ADMIN.audit_name)
        # As `/trame pause` reads it: channel, workflow (locked) and role in one statement.
        named = naming.Named(ws.approvals_channel, None, ("invoice-sync", "incident"))
        pausing = asyncio.ensure_future(workflow_status.pause_named(deps.ctx, named, ADMIN))
        await _other_side_waits(deps)
        assert not pausing.done(), "the pause waits for the run request in flight"
    await asyncio.wait_for(pausing, 10)
    statuses, _ = await _states(deps)
    assert statuses == {"invoice-sync": Status.PAUSED}


async def test_a_pause_naming_two_workflows_locks_them_in_the_order_an_alert_does(
    deps: Deps,
) -> None:
    """`/trame pause invoice sync …` locks every workflow its words may name ("invoice" and
    "invoice sync"). An alert's pause locks the workflows it covers in key order; had the
    command locked in id order (here the opposite), each would hold one and wait for the
    other."""
    ws = await f.governed_workspace(deps)
    await f.workflow(deps, key="invoice-sync", name="Invoice sync")  # the lower id
    await f.workflow(deps, key="invoice", name="Invoice")
    async with deps.db.transaction() as session:
        # An alert's pause of both, at its first lock: "invoice" comes first by key.
        await workflow_with_role(session, "acme", "invoice", ADMIN, lock=True)
        named = naming.Named(ws.approvals_channel, None, ("invoice", "sync", "incident"))
        pausing = asyncio.ensure_future(workflow_status.pause_named(deps.ctx, named, ADMIN))
        await _other_side_waits(deps)
        # Its second lock: free, as the command waits at its first.
        await workflow_with_role(session, "acme", "invoice-sync", ADMIN, lock=True)
    paused = await asyncio.wait_for(pausing, 10)
    assert paused.key == "invoice-sync"
    statuses, _ = await _states(deps)
    assert statuses == {"invoice": Status.PILOT, "invoice-sync": Status.PAUSED}


async def test_pausing_from_an_alert_while_a_reviewer_holds_a_run_does_not_deadlock(
    deps: Deps,
) -> None:
    """A decision locks its run, then the audit head. The alert's pause covers two workflows:
    had it taken the head with the first one's pause before locking the second one's runs,
    each would wait for the other (PostgreSQL ends that by failing one of them)."""
    await f.governed_workspace(deps)
    await f.workflow(deps, key="invoice-sync")
    only_crm = [{"name": "Read", "tool": "crm.query", "connector": "crm", "access": "read"}]
    await f.workflow(deps, key="lead-digest", steps=only_crm)
    await f.request(deps, wf="invoice-sync")
    held = await f.request(deps, wf="lead-digest")
    await connectors.report_health(deps.ctx, "acme", "crm", Report.ERROR, "401 revoked", f.CLI)

    async with deps.db.transaction() as session:
        # What a reviewer's decision does first: the run's row ...
        await session.execute(select(Run.id).where(Run.id == held.id).with_for_update())
        pausing = asyncio.ensure_future(
            alerts.pause_affected_at(deps.ctx, "acme", AlertTarget(connector="crm"), ADMIN)
        )
        await _other_side_waits(deps)
        assert not pausing.done(), "the pause waits for the held run"
        # ... then the audit head, which the pause must not be holding by now.
        await audit_store.append(
            session,
            await workspace_store.get(session, "acme"),
            at=deps.clock.now(),
            actor="slack:U0ADMIN",
            action="test.run_held",
            entity_type="run",
            entity_id=held.id,
            summary="a decision's place in the chain",
        )
    acted = await asyncio.wait_for(pausing, 10)

    assert sorted(w.key for w in acted.workflows) == ["invoice-sync", "lead-digest"]
    statuses, runs = await _states(deps)
    assert statuses == {"invoice-sync": Status.PAUSED, "lead-digest": Status.PAUSED}
    assert runs == {RunState.CANCELLED: 2}
    report = await audit.verify_chain(deps.ctx, "acme")
    assert report.ok, report.problem


async def _appended_in_order(deps: Deps) -> list[str]:
    async with deps.db.reading() as session:
        return list(
            (
                await session.scalars(
                    select(AuditEvent.summary)
                    .where(AuditEvent.action == "test.appended")
                    .order_by(AuditEvent.seq)
                )
            ).all()
        )


async def test_an_event_chained_while_another_transaction_holds_the_head_follows_its_event(
    deps: Deps,
) -> None:
    """The waiting side's event is chained (on PostgreSQL by one statement) to the head as
    the holder committed it, not as it stood when the statement began."""
    await f.workspace(deps)
    other = Database(deps.db.url)
    try:
        async with deps.db.transaction() as session:
            await f.audit_event(deps, session, "holder")
            await session.run_sync(pending.write)  # written out: the head is held from here

            async def waiter() -> None:
                async with other.transaction() as session:
                    await f.audit_event(deps, session, "waiter")

            waiting = asyncio.create_task(waiter())
            await _other_side_waits(deps)
        await waiting
    finally:
        await other.dispose()
    assert await _appended_in_order(deps) == ["holder", "waiter"]
    report = await audit.verify_chain(deps.ctx, "acme")
    assert report.ok, report.problem


async def test_an_event_not_yet_written_out_holds_nothing(deps: Deps) -> None:
    """An append takes the head when its transaction writes its rows out, not when it is
    called: another transaction chains and commits meanwhile, and the first event follows it
    (on SQLite a write transaction holds the whole database from its start, so not there)."""
    if deps.db.is_sqlite:
        pytest.skip("SQLite: a write transaction holds the database from its BEGIN")
    await f.workspace(deps)
    async with deps.db.transaction() as session:
        await f.audit_event(deps, session, "queued first")
        async with asyncio.timeout(10), deps.db.transaction() as meanwhile:
            await f.audit_event(deps, meanwhile, "committed first")
    assert await _appended_in_order(deps) == ["committed first", "queued first"]
    report = await audit.verify_chain(deps.ctx, "acme")
    assert report.ok, report.problem


async def test_a_status_change_takes_the_audit_head_after_its_other_writes(deps: Deps) -> None:
    """Every change in the workspace waits for its chain's head, so a transaction takes it
    with its last statements, after its own changes (the workflow's status, the notice
    queued for the channel): then it holds the head for those and the COMMIT only."""
    await f.governed_workspace(deps)
    await f.workflow(deps)
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])  # (connection, cursor, statement, …)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        await workflow_status.change_status(
            deps.ctx, "acme", "invoice-sync", Status.PAUSED, ADMIN, reason="incident"
        )
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    head = next(i for i, statement in enumerate(statements) if "audit_heads" in statement)
    assert any("UPDATE workflows" in statement for statement in statements[:head])
    assert any("INSERT INTO outbox" in statement for statement in statements[:head])
    assert all("audit_" in statement for statement in statements[head:]), statements[head:]

"""The reads every request makes (each `store.direct.Statement`) take their rows from an index:
none reads a whole table, none reads a workspace's audit log by workspace alone (or by time),
and none reads every run a workflow ever had, so what a command costs does not grow with how
many workspaces there are or with everything a workspace ever did. Nor does listing or
exporting an entity's audit events, nor any statement the most used commands run through
their sessions (`COMMANDS`: status, the workflow and connector lists, approvals, App Home,
the digest, a run request, approve, decline, pause, an entity's audit list), recorded as they
run, nor what the outbox worker runs (its rounds, and the health gauges' counts of the
queue).

Checked on SQLite's plans (EXPLAIN QUERY PLAN on a migrated file of its own, whichever database
the suite runs on): SQLite runs these reads on the event loop, where a scan stalls every other
request. How PostgreSQL's plans hold up at size is measured in `bench/` (the slope rows)."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import re
import shutil
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Select, event, select
from sqlalchemy.dialects.sqlite.aiosqlite import dialect as aiosqlite_dialect

import trame_bot.store
from tests import factories as f
from trame_bot.bootstrap import Deps, build
from trame_bot.clock import FakeClock
from trame_bot.config import Settings
from trame_bot.domain.actors import Actor
from trame_bot.domain.approvals import CardChannel
from trame_bot.domain.enums import Status, Verdict
from trame_bot.services import audit, decisions, digests, health, naming, overview, workflow_status
from trame_bot.services.outbox import DeliveryError, Held, Kind, OutboxWorker
from trame_bot.store import audit as audit_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.audit import AuditFilter
from trame_bot.store.direct import Statement
from trame_bot.store.migrate import upgrade
from trame_bot.store.models import AuditEvent, Base, OutboxMessage

AUDIT_INDEXES = ("sqlite_autoindex_audit_events_1", "ix_audit_events_")


def _statements() -> Iterator[tuple[str, Statement]]:
    for module_info in pkgutil.iter_modules(trame_bot.store.__path__):
        module = importlib.import_module(f"trame_bot.store.{module_info.name}")
        for name, value in vars(module).items():
            found = value.values() if isinstance(value, dict) else [value]
            for index, statement in enumerate(found):
                if isinstance(statement, Statement):
                    yield f"{module_info.name}.{name}[{index}]", statement


STATEMENTS = dict(_statements())


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plans") / "plans.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def _plan(path: Path, sql: str, values: list[Any]) -> list[str]:
    """SQLite's plan of `sql`, one step per line (EXPLAIN QUERY PLAN's detail column)."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute(f"EXPLAIN QUERY PLAN {sql}", values).fetchall()
    return [row[3] for row in rows]


def test_the_statements_are_found() -> None:
    assert {"glance._GLANCE[0]", "pilot._EVENTS[0]", "card._CARD[0]"} <= STATEMENTS.keys()


def faults(plan: list[str]) -> list[str]:
    """The steps of `plan` whose rows grow with everything stored rather than with what the
    statement asks for."""
    # The rows a subquery of the statement made (`CO-ROUTINE record` then `SCAN record`) are
    # read whole, and are as many as its own steps, checked here too, found.
    made = {step.split()[-1] for step in plan if step.startswith(("CO-ROUTINE ", "MATERIALIZE "))}
    return [
        step
        for step in plan
        # A whole table.
        if (
            step.startswith("SCAN")
            and "VIRTUAL TABLE" not in step
            and step.removeprefix("SCAN ") not in made
        )
        # By workspace alone, or by workspace and time, is a read of the whole log (or of all
        # of it since some moment): an entity, or a position in the chain, bounds it.
        or (
            any(index in step for index in AUDIT_INDEXES)
            and "entity_type=" not in step
            and "seq=" not in step
        )
        # A workflow's runs pile up for ever: a read of some of them names which (state, plan).
        # Runs or deliveries by state alone are every workspace's.
        or (step.startswith("SEARCH runs") and step.endswith(("(workflow_id=?)", "(state=?)")))
        or (step.startswith("SEARCH outbox") and step.endswith("(state=?)"))
    ]


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_a_request_read_takes_its_rows_from_an_index(migrated: Path, name: str) -> None:
    compiled = STATEMENTS[name].compiled(aiosqlite_dialect())
    plan = _plan(migrated, compiled.sql, [None] * len(compiled.arguments))
    assert faults(plan) == [], plan
    assert bound_partial_columns(compiled.sql) == [], compiled.sql


def _partial_columns() -> set[str]:
    """`table.column` of each column a partial index's predicate compares with a value
    (`store.partial.where`)."""
    found = set()
    for table in Base.metadata.tables.values():
        for index in table.indexes:
            predicate = index.dialect_options["sqlite"]["where"]
            simple = (
                re.fullmatch(r"(\w+) = '\w+'", str(predicate)) if predicate is not None else None
            )
            if simple:
                found.add(f"{table.name}.{simple[1]}")
    return found


PARTIAL_COLUMNS = _partial_columns()


def bound_partial_columns(sql: str) -> list[str]:
    """The columns of partial indexes that `sql` compares with a bound value. SQLite cannot
    tell whether such a statement may use the index until it sees the value, so it prepares
    the statement again every time it runs (`store.partial`)."""
    return [
        column
        for column in sorted(PARTIAL_COLUMNS)
        if re.search(rf"\b{re.escape(column)} (=|!=|<>) \?", sql)
    ]


def test_the_partial_index_columns_are_found() -> None:
    assert {"runs.state", "outbox.state"} <= PARTIAL_COLUMNS
    assert bound_partial_columns("SELECT 1 FROM runs WHERE runs.state = ?") == ["runs.state"]
    assert bound_partial_columns("SELECT 1 FROM runs WHERE runs.state = 'pending'") == []


ENTITY = AuditFilter(entity_type="connector", entity_id="crm")


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(audit_store.newest(1, ENTITY, 50), id="listed newest first"),
        pytest.param(
            audit_store.matching(select(AuditEvent.seq), 1, ENTITY).order_by(
                audit_store.in_chain_order(ENTITY)
            ),
            id="exported oldest first",
        ),
    ],
)
def test_an_entitys_audit_events_are_read_from_the_entity_index(
    migrated: Path, query: Select[Any]
) -> None:
    """As `/trame audit workflow:<key>` lists them and an export filtered by entity writes
    them: from the entity index, then sorted, however few of the workspace's events are the
    entity's."""
    compiled = query.compile(dialect=aiosqlite_dialect())
    values = [compiled.params[name] for name in compiled.positiontup or ()]
    plan = _plan(migrated, compiled.string, values)
    assert any("ix_audit_events_entity" in step for step in plan), plan


Command = Callable[[Deps, str], Awaitable[object]]
"""A command on workspace `acme`, where `invoice-sync` (a pilot) has a pending run (the id)."""


async def _pause_named(deps: Deps) -> object:
    async with deps.db.reading() as session:
        channel = (await workspace_store.get(session, "acme")).approvals_channel
    named = naming.Named(channel, None, ("INVOICE", "sync", "leak"))
    return await workflow_status.pause_named(deps.ctx, named, Actor.slack(f.MEMBER))


async def _approve_click(deps: Deps, run: str) -> object:
    async with deps.db.reading() as session:
        channel = (await workspace_store.get(session, "acme")).approvals_channel
    card = CardChannel(channel, None)
    return await decisions.decide(deps.ctx, run, Actor.slack(f.ADMIN), Verdict.APPROVE, card=card)


COMMANDS: dict[str, Command] = {
    "status": lambda deps, _: overview.summary(deps.ctx, "acme", f.CLI),
    "workflows": lambda deps, _: overview.workflow_list(deps.ctx, "acme", f.CLI),
    "connectors": lambda deps, _: overview.connector_list(deps.ctx, "acme", f.CLI),
    "approvals": lambda deps, _: overview.waiting_for(deps.ctx, f.ADMIN, "acme"),
    "home": lambda deps, _: overview.homes_for(deps.ctx, f.ADMIN),
    "digest": lambda deps, _: digests.send_digest_now(deps.ctx, "acme", f.CLI),
    "request": lambda deps, _: f.request(deps, "acme"),
    "approve": lambda deps, run: decisions.decide(
        deps.ctx, run, Actor.slack(f.ADMIN), Verdict.APPROVE
    ),
    "approve click": _approve_click,
    "decline": lambda deps, run: decisions.decide(
        deps.ctx, run, Actor.slack(f.ADMIN), Verdict.DECLINE, reason="wrong sheet"
    ),
    "pause": lambda deps, _: workflow_status.change_status(
        deps.ctx, "acme", "Invoice sync", Status.PAUSED, Actor.slack(f.MEMBER), reason="leak"
    ),
    "/trame pause": lambda deps, _: _pause_named(deps),
    "audit": lambda deps, _: audit.list_events(
        deps.ctx, "acme", AuditFilter("workflow", "invoice-sync"), Actor.slack(f.ADMIN)
    ),
}


@pytest.mark.parametrize("name", COMMANDS)
async def test_a_commands_statements_are_bounded_by_what_it_asks_for(
    migrated: Path, tmp_path: Path, name: str
) -> None:
    """No statement the command runs through the engine compares a partial index's column with
    a bound value; every SELECT, as SQLite plans it on the file it ran on, passes `faults`; `/trame status` counts workflows without visiting their rows, and
    `/trame workflows` reads the first of a status in key order from the index, unsorted."""
    path = tmp_path / "trame.db"
    shutil.copyfile(migrated, path)
    deps = build(Settings(database_url=f"sqlite+aiosqlite:///{path}"), clock=FakeClock())
    try:
        await f.governed_workspace(deps, "acme")
        await f.workflow(deps, "acme")
        run = await f.request(deps, "acme")
        ran: list[tuple[str, Any]] = []

        def record(_c: Any, _cursor: Any, sql: str, values: Any, *_: Any) -> None:
            ran.append((sql, values))

        event.listen(Engine, "before_cursor_execute", record)
        try:
            await COMMANDS[name](deps, run.id)
        finally:
            event.remove(Engine, "before_cursor_execute", record)
    finally:
        await deps.close()
    assert ran, "the command ran no statement through the engine"
    for sql, _ in ran:
        assert bound_partial_columns(sql) == [], sql
    for sql, values in ran:
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        plan = _plan(path, sql, list(values))
        assert faults(plan) == [], (sql, plan)
        if name == "status" and "GROUP BY" in sql:
            assert any("COVERING INDEX ix_workflows_workspace_id_status_key" in s for s in plan), (
                plan
            )
        if name == "workflows" and "LIMIT" in sql:
            assert plan == [
                "SEARCH workflows USING INDEX ix_workflows_workspace_id_status_key"
                " (workspace_id=? AND status=?)"
            ], plan


async def test_the_outbox_workers_statements_write_their_states_and_read_from_indexes(
    migrated: Path, tmp_path: Path
) -> None:
    """What the outbox worker runs, which no command does: a round given back unsent (the
    worker stopping), then a round whose three rows go, are held, and fail for good; and the
    health gauges' counts of the queue. No statement compares a partial index's column with a
    bound value. The worker's reads pass `faults`; the gauges count every workspace's waiting
    rows by design, so they need only search, not scan (the state's index range holds only
    the rows waiting)."""
    path = tmp_path / "trame.db"
    shutil.copyfile(migrated, path)
    deps = build(Settings(database_url=f"sqlite+aiosqlite:///{path}"), clock=FakeClock())
    worker_ran: list[tuple[str, Any]] = []
    gauges_ran: list[tuple[str, Any]] = []
    try:
        await f.governed_workspace(deps, "acme")
        await f.workflow(deps, "acme")
        runs = [(await f.request(deps, "acme")).id for _ in range(3)]
        outcomes: dict[str, Exception | None] = {
            runs[0]: None,
            runs[1]: Held("the team is not installed"),
            runs[2]: DeliveryError("refused", retryable=False),
        }

        async def send(message: OutboxMessage) -> None:
            outcome = outcomes[message.payload["run_id"]]
            if outcome is not None:
                raise outcome

        worker = OutboxWorker(deps.ctx, {Kind.SLACK_CARD.value: send})
        stopping = asyncio.Event()
        stopping.set()
        with recorded(worker_ran):
            assert await worker.deliver_due(stopping) == 0
            assert await worker.deliver_due() == 1
        with recorded(gauges_ran):
            await health.readiness(deps.ctx, timedelta(minutes=5))
            await health.gauges(deps.ctx)
    finally:
        await deps.close()
    statements = [sql for sql, _ in worker_ran]
    assert any(sql.startswith("UPDATE outbox SET state") for sql in statements), statements
    queue_gauges = [(sql, values) for sql, values in gauges_ran if "FROM outbox" in sql]
    assert queue_gauges, gauges_ran
    for sql, values in [*worker_ran, *queue_gauges]:
        assert bound_partial_columns(sql) == [], sql
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        plan = _plan(path, sql, list(values))
        if (sql, values) in worker_ran:
            assert faults(plan) == [], (sql, plan)
        assert not any(step.startswith("SCAN") for step in plan), (sql, plan)


@contextmanager
def recorded(ran: list[tuple[str, Any]]) -> Iterator[None]:
    """Every statement run through an engine while inside, with its parameters."""

    def record(_c: Any, _cursor: Any, sql: str, values: Any, *_: Any) -> None:
        ran.append((sql, values))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield
    finally:
        event.remove(Engine, "before_cursor_execute", record)

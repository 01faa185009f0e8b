"""Held Slack rows in distributed mode: a workspace whose Slack team is not installed or was
disconnected keeps its Slack messages (unclaimed, attempts untouched, never failed) while its
webhooks and every other workspace flow; a reinstall sends each held message once, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, text

from tests import factories as f
from trame_bot.bootstrap import Deps, build
from trame_bot.clock import FakeClock
from trame_bot.config import Settings
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Verdict
from trame_bot.errors import NotFound
from trame_bot.services import decisions, installations
from trame_bot.services.outbox import SLACK_KINDS, Held, Kind, OutboxWorker, held_messages
from trame_bot.store import outbox as outbox_store
from trame_bot.store.database import Database
from trame_bot.store.models import AuditEvent, OutboxMessage
from trame_bot.vault import new_key

KEY = new_key()
HOOK = "https://engine.example/hook"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return f.distributed_settings(database_url, KEY)


class RecordingSender:
    """Stands in for Slack and the engine: records each row it is given."""

    def __init__(self) -> None:
        self.sent: list[OutboxMessage] = []

    async def __call__(self, message: OutboxMessage) -> None:
        self.sent.append(message)


def everything(sender: Any) -> dict[str, Any]:
    return {kind.value: sender for kind in Kind}


async def rows(deps: Deps, workspace_id: int | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if workspace_id is not None:
        query = query.where(OutboxMessage.workspace_id == workspace_id)
    async with deps.db.reading() as session:
        return list((await session.execute(query)).scalars())


async def client_with_runs(deps: Deps, key: str, *, decided: bool = True) -> int:
    """A workspace with a webhook, a pending run and, if `decided`, an approved one: Slack
    cards, thread replies, DMs and webhooks in its outbox."""
    workspace = await f.governed_workspace(deps, key, webhook_url=HOOK)
    await f.workflow(deps, key)
    await f.request(deps, key)
    if decided:
        run = await f.request(deps, key)
        await decisions.decide(deps.ctx, run.id, Actor.slack(f.ADMIN), Verdict.APPROVE)
    return workspace.id


async def test_a_disconnected_team_is_held_while_its_webhooks_and_other_teams_flow(
    deps: Deps, clock: FakeClock
) -> None:
    acme = await client_with_runs(deps, "acme")
    globex = await client_with_runs(deps, "globex")
    await f.slack_installation(deps, "acme", team="T0ACME")
    await f.slack_installation(deps, "globex", team="T0GLOBEX")
    assert await installations.disconnect(deps.ctx, "T0ACME", "app_uninstalled")
    held = [m for m in await rows(deps, acme) if m.kind in SLACK_KINDS]
    assert {m.kind for m in held} >= {"slack.card", "slack.thread"}
    assert await held_messages(deps.ctx, "acme") == len(held)
    assert await held_messages(deps.ctx, "globex") == 0

    sender = RecordingSender()
    worker = OutboxWorker(deps.ctx, everything(sender), max_attempts=2)
    await worker.deliver_due()
    sent = {m.id for m in sender.sent}
    assert not sent & {m.id for m in held}
    assert {m.id for m in await rows(deps, globex)} <= sent, "the other team's messages flow"
    assert {m.id for m in await rows(deps, acme) if m.kind == Kind.WEBHOOK} <= sent, (
        "the engine still hears about acme's runs"
    )

    for _ in range(5):  # a day of rounds: never claimed, never counted, never failed
        clock.advance(timedelta(hours=5))
        assert await worker.deliver_due() == 0
    after = {m.id: m for m in await rows(deps, acme)}
    for message in held:
        row = after[message.id]
        assert (row.state, row.attempts, row.locked_until) == ("pending", 0, None)
    async with deps.db.reading() as session:
        failed = await session.execute(
            select(AuditEvent).where(AuditEvent.action == "delivery.failed")
        )
        assert failed.scalars().all() == []

    await f.slack_installation(deps, "acme", team="T0ACME", token="xoxb-acme-NEW-SECRET")
    sender.sent.clear()
    assert await worker.deliver_due() == len(held)
    assert [m.id for m in sender.sent] == [m.id for m in held], "each once, in order"
    assert await worker.deliver_due() == 0
    assert await held_messages(deps.ctx, "acme") == 0


async def test_a_workspace_not_installed_yet_waits_for_its_install(deps: Deps) -> None:
    acme = await client_with_runs(deps, "acme", decided=False)
    (card,) = [m for m in await rows(deps, acme) if m.kind in SLACK_KINDS]
    sender = RecordingSender()
    worker = OutboxWorker(deps.ctx, everything(sender))
    await worker.deliver_due()
    assert card.id not in {m.id for m in sender.sent}
    assert await held_messages(deps.ctx, "acme") == 1

    await f.slack_installation(deps, "acme", team="T0ACME")
    assert await worker.deliver_due() == 1
    assert [m.id for m in sender.sent][-1] == card.id


async def test_a_held_send_goes_back_without_counting_an_attempt(
    deps: Deps, clock: FakeClock
) -> None:
    acme = await client_with_runs(deps, "acme", decided=False)
    await f.slack_installation(deps, "acme", team="T0ACME")
    (card,) = [m for m in await rows(deps, acme) if m.kind in SLACK_KINDS]
    holds = 0

    async def holding(message: OutboxMessage) -> None:
        nonlocal holds
        holds += 1
        raise Held("Slack refuses the token", retry_after=60)

    worker = OutboxWorker(deps.ctx, {Kind.SLACK_CARD.value: holding}, max_attempts=3)
    for _ in range(10):  # more rounds than attempts allowed
        assert await worker.deliver_due() == 0
        assert await worker.deliver_due() == 0, "held until retry_after, not retried at once"
        clock.advance(timedelta(seconds=61))
    assert holds == 10
    (row,) = [m for m in await rows(deps, acme) if m.id == card.id]
    assert (row.state, row.attempts, row.locked_until) == ("pending", 0, None)
    assert row.last_error == "held: Slack refuses the token"

    sender = RecordingSender()
    worker = OutboxWorker(deps.ctx, {Kind.SLACK_CARD.value: sender})
    assert await worker.deliver_due() == 1
    (row,) = [m for m in await rows(deps, acme) if m.id == card.id]
    assert (row.state, row.attempts) == ("sent", 1)


async def test_one_configured_token_holds_nothing(settings: Settings, clock: FakeClock) -> None:
    """Installations mean nothing with SLACK_BOT_TOKEN: a team named on the workspace, even one
    a past distributed setup marked disconnected, holds no message."""
    distributed = build(settings, clock=clock)
    one = build(
        replace(
            settings,
            slack_client_id=None,
            slack_client_secret=None,
            slack_bot_token="xoxb-one-SECRET",
        ),
        clock=clock,
    )
    try:
        assert not one.ctx.distributed
        acme = await client_with_runs(one, "acme")
        await f.slack_installation(distributed, "acme", team="T0ACME")
        await installations.disconnect(distributed.ctx, "T0ACME", "app_uninstalled")
        sender = RecordingSender()
        assert await OutboxWorker(one.ctx, everything(sender)).deliver_due() == len(
            await rows(one, acme)
        )
        assert await held_messages(one.ctx, "acme") == 0
    finally:
        await distributed.close()
        await one.close()


async def test_held_messages_names_an_unknown_workspace(deps: Deps) -> None:
    with pytest.raises(NotFound):
        await held_messages(deps.ctx, "nope")


async def test_two_workers_send_each_held_message_once_after_a_reinstall(deps: Deps) -> None:
    await f.governed_workspace(deps, "acme")
    await f.workflow(deps, "acme")
    await f.slack_installation(deps, "acme", team="T0ACME")
    await installations.disconnect(deps.ctx, "T0ACME", "token_revoked")
    for _ in range(30):
        await f.request(deps, "acme")
    sender = RecordingSender()
    other_db = Database(deps.db.url)
    try:
        workers = [
            OutboxWorker(deps.ctx, everything(sender), batch=100),
            OutboxWorker(replace(deps.ctx, db=other_db), everything(sender), batch=100),
        ]
        await asyncio.gather(*(w.deliver_due() for w in workers))
        assert sender.sent == []
        await f.slack_installation(deps, "acme", team="T0ACME", token="xoxb-acme-NEW-SECRET")
        await asyncio.gather(*(w.deliver_due() for w in workers))
    finally:
        await other_db.dispose()
    ids = [m.id for m in sender.sent]
    assert len(ids) == len(set(ids)) == 30


@pytest.fixture
def statements(deps: Deps) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement the test's database handle sends, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    engine = deps.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


async def test_due_stays_one_query_on_the_state_index(
    deps: Deps, clock: FakeClock, statements: list[tuple[str, Any]], is_postgres: bool
) -> None:
    await client_with_runs(deps, "acme")
    await f.slack_installation(deps, "acme", team="T0ACME")
    statements.clear()
    async with deps.db.reading() as session:
        due = await outbox_store.due(
            session, clock.now(), 50, [k.value for k in Kind], installed_only=SLACK_KINDS
        )
        assert due
        queries = [(s, p) for s, p in statements if "outbox" in s.lower()]
        assert len(queries) == 1, queries
        (statement, parameters), *_ = queries
        if is_postgres:
            # On a few rows the planner rightly scans; what matters is that it can use the index.
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            explain = "EXPLAIN " + statement
        else:
            explain = "EXPLAIN QUERY PLAN " + statement
        connection = await session.connection()
        plan = await connection.exec_driver_sql(explain, parameters)
        assert "ix_outbox_state_next_attempt_at" in str(plan.all())

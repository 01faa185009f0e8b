"""Outbox delivery: after commit, retried with backoff, never lost, once per worker claim."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests import factories as f
from tests.harness import eventually
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import RunState, Status, Verdict
from trame_bot.errors import Forbidden
from trame_bot.services import decisions, workflow_status
from trame_bot.services.context import Context
from trame_bot.services.outbox import WORK_TABLES, DeliveryError, Kind, OutboxWorker
from trame_bot.store import outbox as outbox_store
from trame_bot.store.database import Database
from trame_bot.store.models import AuditEvent, OutboxMessage


class RecordingSender:
    """Stands in for Slack or a webhook receiver: records what it is given, fails on request."""

    def __init__(self, failures: list[DeliveryError] | None = None) -> None:
        self.sent: list[OutboxMessage] = []
        self.failures = list(failures or [])

    async def __call__(self, message: OutboxMessage) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)


async def rows(deps: Deps) -> list[OutboxMessage]:
    async with deps.db.reading() as session:
        return list(
            (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        )


async def pending_run(deps: Deps) -> str:
    await f.governed_workspace(deps, webhook_url="https://engine.example/hook")
    await f.workflow(deps)
    return (await f.request(deps)).id


async def test_rows_are_delivered_in_order_and_marked_sent(deps: Deps) -> None:
    run_id = await pending_run(deps)
    await decisions.decide(deps.ctx, run_id, Actor.slack(f.ADMIN), Verdict.APPROVE)
    sender = RecordingSender()
    worker = OutboxWorker(deps.ctx, {kind.value: sender for kind in Kind})
    assert await worker.deliver_due() == len(await rows(deps))
    assert [m.kind for m in sender.sent] == [
        "slack.card",
        "slack.thread",
        "slack.card",
        "slack.dm",
        "webhook",
    ]
    assert {m.state for m in await rows(deps)} == {outbox_store.SENT}
    assert await worker.deliver_due() == 0


class GatedSender(RecordingSender):
    """Holds the first run's messages until released: a receiver that is slow for one card."""

    def __init__(self, held_run: str) -> None:
        super().__init__()
        self.held_run = held_run
        self.release = asyncio.Event()

    async def __call__(self, message: OutboxMessage) -> None:
        if message.payload.get("run_id") == self.held_run:
            await self.release.wait()
        await super().__call__(message)


async def test_one_slow_run_holds_up_only_its_own_messages(deps: Deps) -> None:
    slow = await pending_run(deps)
    fast = (await f.request(deps)).id
    for run_id in (slow, fast):
        await decisions.decide(deps.ctx, run_id, Actor.slack(f.ADMIN), Verdict.APPROVE)
    sender = GatedSender(slow)
    worker = OutboxWorker(deps.ctx, {kind.value: sender for kind in Kind})
    delivering = asyncio.create_task(worker.deliver_due())

    def of_fast() -> set[str]:
        return {m.kind for m in sender.sent if m.payload.get("run_id") == fast}

    for _ in range(500):
        if of_fast() >= {"slack.card", "slack.thread"}:
            break
        await asyncio.sleep(0.01)
    assert of_fast() >= {"slack.card", "slack.thread"}, "the fast run went past the slow one"
    assert not [m for m in sender.sent if m.payload.get("run_id") == slow]
    sender.release.set()
    assert await delivering == len(await rows(deps))
    of_slow = [m.kind for m in sender.sent if m.payload.get("run_id") == slow]
    assert of_slow == ["slack.card", "slack.thread", "slack.card"], "in order within a run"


async def test_a_change_that_rolls_back_leaves_no_outbox_row(deps: Deps) -> None:
    run_id = await pending_run(deps)
    before = len(await rows(deps))
    with pytest.raises(Forbidden):
        await decisions.decide(deps.ctx, run_id, Actor.slack("U0STRANGER"), Verdict.APPROVE)
    assert len(await rows(deps)) == before


async def test_failures_back_off_then_succeed(deps: Deps, clock: FakeClock) -> None:
    await pending_run(deps)
    sender = RecordingSender(
        [DeliveryError("slack 500"), DeliveryError("rate limited", retry_after=30)]
    )
    worker = OutboxWorker(deps.ctx, {Kind.SLACK_CARD.value: sender})
    assert await worker.deliver_due() == 0
    (row,) = await rows(deps)
    assert (row.attempts, row.last_error) == (1, "slack 500")
    assert row.next_attempt_at == clock.now() + timedelta(seconds=2)
    assert await worker.deliver_due() == 0, "not due yet"
    clock.advance(timedelta(seconds=2))
    assert await worker.deliver_due() == 0
    (row,) = await rows(deps)
    assert row.next_attempt_at == clock.now() + timedelta(seconds=30), "Retry-After wins"
    clock.advance(timedelta(seconds=30))
    assert await worker.deliver_due() == 1
    assert len(sender.sent) == 1


async def test_permanent_failure_is_recorded_in_the_audit_log(deps: Deps, clock: FakeClock) -> None:
    await pending_run(deps)
    worker = OutboxWorker(
        deps.ctx,
        {
            Kind.SLACK_CARD.value: RecordingSender(
                [DeliveryError("invalid_blocks", retryable=False)]
            )
        },
    )
    await worker.deliver_due()
    (row,) = await rows(deps)
    assert row.state == outbox_store.FAILED
    async with deps.db.reading() as session:
        event = (
            await session.execute(select(AuditEvent).where(AuditEvent.action == "delivery.failed"))
        ).scalar_one()
    assert "invalid_blocks" in event.data


async def test_gives_up_after_max_attempts(deps: Deps, clock: FakeClock) -> None:
    await pending_run(deps)
    sender = RecordingSender([DeliveryError("down")] * 3)
    worker = OutboxWorker(deps.ctx, {Kind.SLACK_CARD.value: sender}, max_attempts=3)
    for _ in range(3):
        await worker.deliver_due()
        clock.advance(timedelta(hours=1))
    (row,) = await rows(deps)
    assert (row.state, row.attempts) == (outbox_store.FAILED, 3)


async def test_kinds_without_a_sender_wait_for_a_process_that_has_one(deps: Deps) -> None:
    await pending_run(deps)
    worker = OutboxWorker(deps.ctx, {Kind.WEBHOOK.value: RecordingSender()})
    assert await worker.deliver_due() == 0
    (row,) = await rows(deps)
    assert (row.state, row.attempts) == (outbox_store.PENDING, 0)


async def test_two_workers_deliver_each_row_once(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps)
    for _ in range(30):
        await f.request(deps)
    sender = RecordingSender()
    other_db = Database(deps.db.url)
    try:
        workers = [
            OutboxWorker(deps.ctx, {Kind.SLACK_CARD.value: sender}, batch=100),
            OutboxWorker(Context(other_db, deps.clock), {Kind.SLACK_CARD.value: sender}, batch=100),
        ]
        await asyncio.gather(*(w.deliver_due() for w in workers))
    finally:
        await other_db.dispose()
    ids = [m.id for m in sender.sent]
    assert len(ids) == len(set(ids)) == 30


async def test_a_worker_that_dies_mid_delivery_loses_nothing(deps: Deps, clock: FakeClock) -> None:
    await pending_run(deps)
    (row,) = await rows(deps)
    async with deps.db.transaction() as session:  # claimed by a worker that then crashed
        assert (
            await outbox_store.claim(session, row.id, clock.now(), timedelta(seconds=60))
            is not None
        )
    sender = RecordingSender()
    worker = OutboxWorker(deps.ctx, {Kind.SLACK_CARD.value: sender})
    assert await worker.deliver_due() == 0, "the lease still holds"
    clock.advance(timedelta(seconds=61))
    assert await worker.deliver_due() == 1
    assert len(sender.sent) == 1


async def test_the_run_loop_wakes_on_demand_and_stops(deps: Deps) -> None:
    await pending_run(deps)
    sender = RecordingSender()
    worker = OutboxWorker(deps.ctx, {Kind.SLACK_CARD.value: sender})
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, poll=30))
    for _ in range(100):
        if sender.sent:
            break
        await asyncio.sleep(0.01)
    assert len(sender.sent) == 1
    stop.set()
    await asyncio.wait_for(task, timeout=5)


async def test_only_commits_that_give_the_worker_work_wake_it(deps: Deps) -> None:
    """Each wake costs the worker a read of the outbox: a run request on a live workflow, which
    queues no message, does not wake it; a pending run (its card) and a workspace change (a
    Slack team may be bound, releasing held rows) do."""
    woken: list[str] = []
    commits: list[str] = []
    deps.db.on_commit(lambda: woken.append("woken"), tables=WORK_TABLES)
    deps.db.on_commit(lambda: commits.append("commit"))
    await f.governed_workspace(deps)
    assert woken, "the new workspace (an ORM write) woke it"
    await f.workflow(deps, "acme", "pending-one")
    await f.workflow(deps)
    await workflow_status.change_status(
        deps.ctx,
        "acme",
        "invoice-sync",
        Status.LIVE,
        Actor.cli(),
        sign_off=workflow_status.SignOff("Jane", "mail"),
        rollback_plan="pause",
    )
    woken.clear()
    commits.clear()
    assert (await f.request(deps)).state is RunState.APPROVED
    assert (woken, commits) == ([], ["commit"])
    assert (await f.request(deps, wf="pending-one")).state is RunState.PENDING
    assert (woken, commits) == (["woken"], ["commit", "commit"])


async def test_a_backlog_larger_than_a_batch_is_sent_without_waiting_for_the_poll(
    deps: Deps,
) -> None:
    """A round that claimed rows is followed at once by another (more may be due): the worker
    does not wait for a commit or its poll between batches."""
    await f.governed_workspace(deps)
    await f.workflow(deps)
    for _ in range(5):
        await f.request(deps)
    sender = RecordingSender()
    worker = OutboxWorker(deps.ctx, {kind.value: sender for kind in Kind}, batch=2)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop, poll=3600))

    async def all_sent() -> bool:
        return len(sender.sent) == 5

    try:
        await eventually(all_sent, within=30)  # the poll is an hour: only the wake can do it
    finally:
        stop.set()
        await running
    assert len(sender.sent) == 5

"""Reminders once after the delay; expiry at the TTL with its card, webhook and audit event."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, RunState, Verdict
from trame_bot.services import decisions, reminders, runs
from trame_bot.services.context import Context
from trame_bot.store.database import Database
from trame_bot.store.models import AuditEvent, OutboxMessage


async def outbox(deps: Deps) -> list[OutboxMessage]:
    async with deps.db.reading() as session:
        return list(
            (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        )


async def test_reviewers_who_have_not_decided_are_reminded_once(
    deps: Deps, clock: FakeClock
) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps, required_approvals=2)
    run = await f.request(deps, by=f.MEMBER)
    await decisions.decide(deps.ctx, run.id, Actor.slack(f.ADMIN), Verdict.APPROVE)
    clock.advance(timedelta(hours=3, minutes=59))
    assert await reminders.remind_due(deps.ctx) == 0
    clock.advance(timedelta(minutes=1))
    other = Database(deps.db.url)
    try:
        sent = await asyncio.gather(
            reminders.remind_due(deps.ctx), reminders.remind_due(Context(other, clock))
        )
    finally:
        await other.dispose()
    assert sum(sent) == 1
    clock.advance(timedelta(hours=5))
    assert await reminders.remind_due(deps.ctx) == 0
    (reminder,) = [
        m.payload for m in await outbox(deps) if m.payload.get("event") == "run.reminder"
    ]
    waiting = reminder["data"]["reviewers"]
    assert f.ADMIN not in waiting, "already decided"
    assert f.MEMBER not in waiting, "the requester"
    assert sorted(waiting) == sorted([f.OWNER, f.OTHER])


async def test_named_reviewers_are_the_ones_reminded(deps: Deps, clock: FakeClock) -> None:
    await f.governed_workspace(deps, members=((f.OWNER, Role.OWNER),))
    await f.workflow(deps, reviewers=["U0CLIENT1", "U0CLIENT2"])
    await f.request(deps)
    clock.advance(timedelta(hours=5))
    assert await reminders.remind_due(deps.ctx) == 1
    (reminder,) = [
        m.payload for m in await outbox(deps) if m.payload.get("event") == "run.reminder"
    ]
    assert reminder["data"]["reviewers"] == ["U0CLIENT1", "U0CLIENT2"]


async def test_expiry_updates_the_card_fires_the_webhook_and_is_audited_once(
    deps: Deps, clock: FakeClock
) -> None:
    await f.governed_workspace(deps, webhook_url="https://engine.example/hooks")
    await f.workflow(deps)
    run = await f.request(deps, by=f.MEMBER)
    clock.advance(timedelta(hours=24))
    other = Database(deps.db.url)
    try:
        expired = await asyncio.gather(
            runs.expire_due_runs(deps.ctx), runs.expire_due_runs(Context(other, clock))
        )
    finally:
        await other.dispose()
    assert sum(expired) == 1
    assert await runs.expire_due_runs(deps.ctx) == 0
    found, _ = await runs.get_run(deps.ctx, "acme", run.id)
    assert found.state is RunState.EXPIRED
    kinds = [(m.kind, m.payload.get("type") or m.payload.get("event")) for m in await outbox(deps)]
    assert kinds.count(("webhook", "run.expired")) == 1
    assert kinds.count(("slack.dm", "run.expired")) == 1
    assert ("slack.card", None) in kinds
    async with deps.db.reading() as session:
        events = (
            (await session.execute(select(AuditEvent.action).where(AuditEvent.entity_id == run.id)))
            .scalars()
            .all()
        )
    assert list(events) == ["run.requested", "run.expired"]

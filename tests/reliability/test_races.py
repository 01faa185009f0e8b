"""Races over real HTTP: many reviewers at once, approve against decline, a pause against
approvals, two server processes taking the same clicks. One outcome each, a chain that holds."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import replace

import aiohttp
from sqlalchemy import select

from tests import factories as f
from tests.harness import Bot
from tests.reliability.processes import ServerProcess
from trame_bot.domain.enums import Role, RunState
from trame_bot.sandbox.slack_requests import selected_option, text_input
from trame_bot.services import audit
from trame_bot.slack.ids import Action, BlockId, Callback
from trame_bot.store.models import AuditEvent, Decision

REVIEWERS = [f"U0REV{i:02d}" for i in range(20)]


async def setup(bot: Bot, **workflow: object) -> str:
    members = [(u, Role.MEMBER) for u in REVIEWERS] + [
        (f.OWNER, Role.OWNER),
        (f.MEMBER, Role.MEMBER),
    ]
    ws = await f.workspace(bot.deps, members=members)
    await f.connector(bot.deps, "acme", "crm")
    await f.connector(bot.deps, "acme", "sheets")
    await f.workflow(bot.deps, **workflow)  # type: ignore[arg-type]
    return ws.approvals_channel


async def final_events(bot: Bot, run_id: str) -> Counter[str]:
    async with bot.deps.db.reading() as session:
        rows = await session.execute(
            select(AuditEvent.action).where(AuditEvent.entity_id == run_id)
        )
        return Counter(a for a in rows.scalars() if a != "run.requested")


async def test_twenty_reviewers_click_approve_at_once_on_a_quorum_of_one(bot: Bot) -> None:
    channel = await setup(bot)
    for _ in range(3):
        run = await f.request(bot.deps, by=f.MEMBER)
        answers = await asyncio.gather(
            *(bot.click(Action.APPROVE, run.id, user=u, channel=channel) for u in REVIEWERS)
        )
        assert {a.status for a in answers} == {200}
        assert await bot.settles(run.id) is RunState.APPROVED
        assert await final_events(bot, run.id) == {"run.approved": 1}
        async with bot.deps.db.reading() as session:
            assert (
                len(
                    (await session.execute(select(Decision).where(Decision.run_id == run.id)))
                    .scalars()
                    .all()
                )
                == 1
            )
    assert (await audit.verify_chain(bot.deps.ctx, "acme")).ok


async def test_approve_and_decline_at_the_same_instant(bot: Bot) -> None:
    channel = await setup(bot)
    outcomes = Counter()
    for _ in range(8):
        run = await f.request(bot.deps, by=f.MEMBER)
        decline = bot.slack.view_submission(
            user=REVIEWERS[1],
            callback_id=Callback.DECLINE,
            private_metadata=json.dumps({"run_id": run.id, "channel": channel}),
            values={
                BlockId.DECLINE_CATEGORY: {Action.DECLINE_CATEGORY: selected_option("looks_risky")},
                BlockId.DECLINE_REASON: {
                    Action.DECLINE_REASON: text_input("this batch looks wrong")
                },
            },
        )
        await asyncio.gather(
            bot.click(Action.APPROVE, run.id, user=REVIEWERS[0], channel=channel), bot.send(decline)
        )
        state = await bot.settles(run.id)
        outcomes[state] += 1
        assert sum((await final_events(bot, run.id)).values()) == 1, "one effective decision"
    assert set(outcomes) <= {RunState.APPROVED, RunState.DECLINED}
    assert (await audit.verify_chain(bot.deps.ctx, "acme")).ok


async def test_a_pause_while_runs_are_being_approved(bot: Bot) -> None:
    channel = await setup(bot)
    pending = [await f.request(bot.deps, by=f.MEMBER) for _ in range(15)]
    clicks = [
        bot.click(Action.APPROVE, run.id, user=REVIEWERS[i], channel=channel)
        for i, run in enumerate(pending)
    ]
    pause = bot.command(
        "pause invoice-sync client asked to stop", user=REVIEWERS[19], channel=channel
    )
    await asyncio.gather(pause, *clicks)
    for run in pending:
        state = await bot.settles(run.id)
        assert state in (RunState.APPROVED, RunState.CANCELLED)
        events = await final_events(bot, run.id)
        assert sum(events.values()) == 1, events
    assert (await audit.verify_chain(bot.deps.ctx, "acme")).ok


async def test_two_server_processes_receive_the_same_clicks(bot: Bot, database_url: str) -> None:
    channel = await setup(bot, required_approvals=2)
    runs = [await f.request(bot.deps, by=f.MEMBER) for _ in range(10)]
    settings = replace(bot.deps.settings, slack_api_url=bot.fake_url + "api/")
    servers = [ServerProcess(settings, database_url), ServerProcess(settings, database_url)]
    await asyncio.gather(*(s.start() for s in servers))
    try:
        async with aiohttp.ClientSession() as session:

            async def click(server: ServerProcess, run_id: str, user: str) -> int:
                request = bot.slack.block_action(
                    user=user,
                    action_id=Action.APPROVE.value,
                    value=run_id,
                    block_id="run_actions",
                    channel=channel,
                    message_ts="1.1",
                )
                async with session.post(
                    server.url + "/slack/events", data=request.body, headers=request.headers
                ) as r:
                    return r.status

            # Each reviewer's click reaches both processes (Slack retried it against another).
            statuses = await asyncio.gather(
                *(
                    click(server, run.id, user)
                    for run in runs
                    for user in REVIEWERS[:3]
                    for server in servers
                )
            )
    finally:
        for server in servers:
            await server.stop()
    assert set(statuses) == {200}
    for run in runs:
        assert await bot.state_of(run.id) is RunState.APPROVED
        async with bot.deps.db.reading() as session:
            decisions = (
                (await session.execute(select(Decision).where(Decision.run_id == run.id)))
                .scalars()
                .all()
            )
        assert len(decisions) == 2, "two distinct approvals reach the quorum; the rest are refused"
        assert await final_events(bot, run.id) == {"run.approval_recorded": 1, "run.approved": 1}
    assert (await audit.verify_chain(bot.deps.ctx, "acme")).ok

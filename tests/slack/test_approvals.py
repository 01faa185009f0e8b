"""Approval cards end to end: posted when a run waits, decided by clicks, updated in place."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import func, select

from tests import factories as f
from tests.harness import Bot, eventually
from trame_bot.domain.enums import RunState
from trame_bot.sandbox.slack_requests import selected_option, text_input
from trame_bot.services import runs
from trame_bot.slack.ids import Action, BlockId, Callback
from trame_bot.store.models import AuditEvent, Decision


def buttons(blocks: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


async def test_a_pending_run_posts_a_card_and_an_approval_settles_it(bot: Bot, acme: str) -> None:
    run = await f.request(bot.deps, by=f.MEMBER)
    await bot.delivered()
    card = bot.card(acme)
    assert buttons(card.blocks) == [Action.APPROVE, Action.DECLINE]
    assert "Approval needed: Invoice sync" in card.text

    answer = await bot.click(Action.APPROVE, run.id, user=f.ADMIN, channel=acme, ts=card.ts)
    assert answer.status == 200
    assert await bot.settles(run.id) is RunState.APPROVED
    updated = bot.fake.message(acme, card.ts)
    assert updated is not None
    assert buttons(updated.blocks) == [], "the buttons are gone once decided"
    assert "Approved" in updated.text
    (reply,) = bot.thread(acme, card.ts)
    assert f"<@{f.ADMIN}> approved" in reply.text
    dm = [c for c in bot.fake.calls_to("conversations.open") if c.args.get("users") == f.MEMBER]
    assert dm, "the requester hears the outcome"


async def test_double_click_and_late_click_are_told_who_decided(bot: Bot, acme: str) -> None:
    run = await f.request(bot.deps, by=f.MEMBER)
    await bot.delivered()
    ts = bot.card(acme).ts
    first, second = await asyncio.gather(
        bot.click(Action.APPROVE, run.id, user=f.ADMIN, channel=acme, ts=ts),
        bot.click(Action.APPROVE, run.id, user=f.ADMIN, channel=acme, ts=ts),
    )
    assert (first.status, second.status) == (200, 200)
    assert await bot.settles(run.id) is RunState.APPROVED
    told_admin = await bot.told(f.ADMIN)
    assert "already" in told_admin[0], "the second click is told its decision is recorded"
    late = await bot.click(Action.APPROVE, run.id, user=f.OWNER, channel=acme, ts=ts)
    assert late.status == 200
    (told,) = await bot.told(f.OWNER)
    assert f"already approved by <@{f.ADMIN}>" in told
    async with bot.deps.db.reading() as session:
        assert await session.scalar(select(func.count()).select_from(Decision)) == 1
        assert (
            await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "run.approved")
            )
            == 1
        )


async def test_two_reviewers_at_once_on_a_quorum_of_two(bot: Bot, acme: str) -> None:
    await f.workflow(bot.deps, key="dual", required_approvals=2)
    run = await f.request(bot.deps, wf="dual", by="U0REQ")
    await bot.delivered()
    ts = bot.card(acme).ts
    await asyncio.gather(
        bot.click(Action.APPROVE, run.id, user=f.ADMIN, channel=acme, ts=ts),
        bot.click(Action.APPROVE, run.id, user=f.OWNER, channel=acme, ts=ts),
    )
    assert await bot.settles(run.id) is RunState.APPROVED
    found, decisions = await runs.get_run(bot.deps.ctx, "acme", run.id)
    assert (found.state, found.approvals, len(decisions)) == (RunState.APPROVED, 2, 2)
    assert len(bot.thread(acme, ts)) == 2


async def test_a_non_reviewer_and_the_requester_are_refused(bot: Bot, acme: str) -> None:
    run = await f.request(bot.deps, by=f.MEMBER)
    await bot.delivered()
    await bot.click(Action.APPROVE, run.id, user="U0STRANGER", channel=acme)
    await bot.click(Action.APPROVE, run.id, user=f.MEMBER, channel=acme)
    assert "only members of this workspace" in (await bot.told("U0STRANGER"))[0]
    assert "someone else must approve" in (await bot.told(f.MEMBER))[0]
    found, _ = await runs.get_run(bot.deps.ctx, "acme", run.id)
    assert found.state is RunState.PENDING


async def test_decline_opens_a_form_that_requires_a_reason(bot: Bot, acme: str) -> None:
    run = await f.request(bot.deps, by=f.MEMBER)
    await bot.delivered()
    ts = bot.card(acme).ts
    assert (
        await bot.click(Action.DECLINE, run.id, user=f.ADMIN, channel=acme, ts=ts)
    ).status == 200

    async def opened_form() -> bool:
        return bool(bot.fake.calls_to("views.open"))

    await eventually(opened_form)
    (opened,) = bot.fake.calls_to("views.open")
    view = opened.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == Callback.DECLINE
    metadata = view["private_metadata"]

    def submit(reason: str | None) -> object:
        return bot.slack.view_submission(
            user=f.ADMIN,
            callback_id=Callback.DECLINE,
            private_metadata=metadata,
            values={
                BlockId.DECLINE_CATEGORY: {Action.DECLINE_CATEGORY: selected_option("wrong_data")},
                BlockId.DECLINE_REASON: {Action.DECLINE_REASON: text_input(reason)},
            },
        )

    too_short = await bot.send(submit("no"))  # type: ignore[arg-type]
    assert too_short.status == 200
    assert too_short.json["response_action"] == "errors"
    assert BlockId.DECLINE_REASON in too_short.json["errors"]
    found, _ = await runs.get_run(bot.deps.ctx, "acme", run.id)
    assert found.state is RunState.PENDING

    done = await bot.send(submit("The sheet is last month's, not this one"))  # type: ignore[arg-type]
    assert (done.status, done.body) == (200, "")
    assert await bot.settles(run.id) is RunState.DECLINED
    found, _ = await runs.get_run(bot.deps.ctx, "acme", run.id)
    assert (found.state, found.reason) == (
        RunState.DECLINED,
        "The sheet is last month's, not this one",
    )
    card = bot.fake.message(acme, ts)
    assert card is not None
    assert buttons(card.blocks) == []
    assert "declined (Wrong data)" in bot.thread(acme, ts)[0].text


async def test_a_run_of_another_workspace_cannot_be_clicked_from_this_channel(
    bot: Bot, acme: str
) -> None:
    other = await f.governed_workspace(bot.deps, "globex")
    await f.workflow(bot.deps, "globex")
    foreign = await f.request(bot.deps, "globex")
    await bot.click(Action.APPROVE, foreign.id, user=f.ADMIN, channel=acme)
    (told,) = await bot.told(f.ADMIN)
    assert "not known here" in told
    assert await bot.state_of(foreign.id, "globex") is RunState.PENDING
    assert other.key == "globex"


async def test_a_500_step_plan_posts_a_valid_card(bot: Bot, acme: str) -> None:
    plan = [
        {
            "name": f"Step {i} " + "x" * 200,
            "tool": f"tool.{i}",
            "connector": "crm" if i % 2 else "sheets",
            "access": "read" if i % 2 else "write",  # crm is granted read only
        }
        for i in range(500)
    ]
    await f.workflow(bot.deps, key="huge", steps=plan)
    await f.request(bot.deps, wf="huge")
    await bot.delivered()
    posted = [c for c in bot.fake.calls_to("chat.postMessage") if c.ok]
    assert posted, [c.outcome for c in bot.fake.calls_to("chat.postMessage")]
    assert "Planned steps (500)" in json.dumps(bot.card(acme).blocks)

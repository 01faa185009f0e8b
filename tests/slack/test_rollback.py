"""A rollback plan that runs: recorded structured at go-live (the form), carried out by
`/trame rollback` and by the Roll back button of the go-live announcement."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update

from tests import factories as f
from tests.harness import Bot, eventually
from tests.slack.test_incidents import button, incident_workspace, statuses
from trame_bot.domain.enums import Status
from trame_bot.domain.rollback import RollbackAction, RollbackPlan, read_stored
from trame_bot.sandbox.block_kit import block_errors
from trame_bot.sandbox.slack_requests import selected_option, text_input
from trame_bot.services import workflow_status, workflows
from trame_bot.slack.ids import Action, BlockId, Callback
from trame_bot.store.models import AuditEvent, Workflow


async def open_go_live_form(bot: Bot, channel: str) -> dict[str, Any]:
    answer = await bot.command("promote invoice-sync live", user=f.ADMIN, channel=channel)
    assert answer.status == 200

    async def opened() -> bool:
        return bool(bot.fake.calls_to("views.open"))

    await eventually(opened)
    view = bot.fake.calls_to("views.open")[-1].args["view"]
    return dict(json.loads(view) if isinstance(view, str) else view)


def submit(bot: Bot, view: dict[str, Any], action: str, triggers: list[str]) -> Any:
    ticked = [{"value": t, "text": {"type": "plain_text", "text": t}} for t in triggers]
    return bot.slack.view_submission(
        user=f.ADMIN,
        callback_id=Callback.PROMOTE_LIVE,
        private_metadata=view["private_metadata"],
        values={
            BlockId.SIGNED_OFF_BY: {Action.SIGNED_OFF_BY: text_input("Jane (client)")},
            BlockId.EVIDENCE: {Action.EVIDENCE: text_input("mail of 1 Dec")},
            BlockId.ROLLBACK_ACTION: {Action.ROLLBACK_ACTION: selected_option(action)},
            BlockId.ROLLBACK_TRIGGERS: {
                Action.ROLLBACK_TRIGGERS: {"type": "checkboxes", "selected_options": ticked}
            },
            BlockId.ROLLBACK_PLAN: {Action.ROLLBACK_PLAN: text_input("then call Jane")},
        },
    )


async def audited(bot: Bot, action: str) -> list[AuditEvent]:
    async with bot.deps.db.reading() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
        return list(rows)


async def test_a_plan_that_disables_triggers_set_in_the_form_and_run_by_the_command(
    bot: Bot,
) -> None:
    ws = await incident_workspace(bot)
    await workflow_status.change_status(
        bot.deps.ctx, "acme", "invoice-sync", Status.PAUSED, f.CLI, reason="setup"
    )
    await workflow_status.resume(bot.deps.ctx, "acme", "invoice-sync", f.CLI)
    await workflow_status.change_status(bot.deps.ctx, "acme", "invoice-sync", Status.PILOT, f.CLI)
    view = await open_go_live_form(bot, ws.approvals_channel)
    assert block_errors(view["blocks"], max_blocks=100) == []
    empty = await bot.send(submit(bot, view, "disable_triggers", []))
    assert list(empty.json["errors"]) == [BlockId.ROLLBACK_TRIGGERS]
    done = await bot.send(submit(bot, view, "disable_triggers", ["nightly"]))
    assert done.status == 200
    live = await workflows.get_workflow(bot.deps.ctx, "acme", "invoice-sync")
    assert read_stored(live.rollback_plan) == RollbackPlan(
        RollbackAction.DISABLE_TRIGGERS, ("nightly",), "then call Jane"
    )

    answer = await bot.command(
        "rollback invoice-sync client asked", user=f.MEMBER, channel=ws.approvals_channel
    )
    assert "triggers `nightly` are off" in answer.text
    await bot.delivered()
    (notice,) = [m for m in bot.fake.messages(ws.approvals_channel) if "rolled back" in m.text]
    assert f"<@{f.MEMBER}> rolled back" in notice.text
    assert "triggers `nightly` are off" in notice.text
    assert "client asked" in notice.text
    assert block_errors(notice.blocks) == []
    again = await workflows.get_workflow(bot.deps.ctx, "acme", "invoice-sync")
    assert again.status is Status.LIVE
    assert [t.enabled for t in again.triggers] == [False]
    (event,) = await audited(bot, "workflow.rolled_back")
    assert (event.actor, event.reason) == (f"slack:{f.MEMBER}", "client asked")
    assert json.loads(event.data)["disabled"] == ["nightly"]
    assert len(await audited(bot, "workflow.trigger_changed")) == 1
    refused = await bot.command(
        "rollback invoice-sync", user=f.MEMBER, channel=ws.approvals_channel
    )
    assert "already off" in refused.text


async def test_the_roll_back_button_on_the_go_live_announcement_pauses(bot: Bot) -> None:
    ws = await incident_workspace(bot)  # invoice-sync went live with a plan to pause
    await bot.delivered()
    announcement = [
        m for m in bot.fake.messages(ws.approvals_channel) if "promoted to live" in m.text
    ][-1]
    assert block_errors(announcement.blocks) == []
    found = button(announcement, Action.ROLL_BACK)
    assert found is not None
    assert found["confirm"]
    answer = await bot.click(
        Action.ROLL_BACK,
        found["value"],
        user=f.MEMBER,
        channel=ws.approvals_channel,
        ts=announcement.ts,
    )
    assert answer.status == 200
    assert "rolled back: paused" in (await bot.told(f.MEMBER))[-1]
    assert (await statuses(bot))["invoice-sync"] is Status.PAUSED
    (event,) = await audited(bot, "workflow.rolled_back")
    assert event.reason == "from the go-live announcement"
    paused = (await audited(bot, "workflow.status_changed"))[-1]
    assert paused.reason == "rollback: from the go-live announcement"


async def test_an_old_free_text_plan_falls_back_to_pausing(bot: Bot) -> None:
    ws = await incident_workspace(bot)
    async with bot.deps.db.transaction() as session:  # as a row written before this change
        await session.execute(
            update(Workflow)
            .where(Workflow.key == "invoice-sync")
            .values(rollback_plan="Pause it, then restore yesterday's sheet.")
        )
    answer = await bot.command("rollback invoice-sync", user=f.MEMBER, channel=ws.approvals_channel)
    assert "no structured rollback plan" in answer.text
    assert (await statuses(bot))["invoice-sync"] is Status.PAUSED
    (event,) = await audited(bot, "workflow.rolled_back")
    data = json.loads(event.data)
    assert (data["structured"], data["plan"]["notes"]) == (
        False,
        "Pause it, then restore yesterday's sheet.",
    )
    assert (await audited(bot, "workflow.status_changed"))[-1].reason == "rollback"

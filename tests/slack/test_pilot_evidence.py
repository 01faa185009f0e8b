"""Promote with evidence, through signed requests into the running server: `/trame status
<workflow>` shows a pilot's record, and the go-live form shows it with its warnings (a recent
decline, fewer approved runs than the workspace asks for), which inform and never block."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tests import factories as f
from tests.harness import Bot, eventually
from tests.services.test_pilot import DECLINE_REASON, pilot_scenario
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Status, Verdict
from trame_bot.sandbox.slack_requests import text_input
from trame_bot.services import decisions, workflow_status, workflows, workspaces
from trame_bot.slack.ids import Action, BlockId, Callback


async def channel(bot: Bot) -> str:
    return (await workspaces.get_workspace(bot.deps.ctx, "acme")).approvals_channel


async def set_minimum(bot: Bot, minimum: int) -> None:
    await workspaces.configure_workspace(
        bot.deps.ctx, "acme", workspaces.WorkspaceSettings(min_approved_pilot_runs=minimum), f.CLI
    )


async def go_live_form(bot: Bot) -> dict[str, str]:
    """Opens the go-live form as an admin; returns its sections by block id."""
    return sections(await open_form(bot))


def sections(view: dict[str, Any]) -> dict[str, str]:
    return {
        b["block_id"]: b["text"]["text"]
        for b in view["blocks"]
        if b["type"] == "section" and "block_id" in b
    }


async def open_form(bot: Bot) -> dict[str, Any]:
    opened = len(bot.fake.calls_to("views.open"))
    answer = await bot.command(
        "promote invoice-sync live", user=f.ADMIN, channel=await channel(bot)
    )
    assert answer.status == 200

    async def shown() -> bool:
        return len(bot.fake.calls_to("views.open")) > opened

    await eventually(shown)
    view: Any = bot.fake.calls_to("views.open")[-1].args["view"]
    return dict(json.loads(view) if isinstance(view, str) else view)


async def test_status_shows_the_pilot_record_and_only_in_pilot(bot: Bot, clock: FakeClock) -> None:
    await pilot_scenario(bot.deps, clock)
    status = (
        await bot.command("status invoice sync", user=f.MEMBER, channel=await channel(bot))
    ).text
    assert "*Pilot record* since version 1 was saved" in status
    assert "Runs of this plan: 2 approved, 1 declined, 1 expired, 1 pending" in status
    assert f"Declined <!date^{int(clock.now().timestamp())}^" in status
    assert f"by <@{f.OWNER}> (Wrong data): “{DECLINE_REASON}”" in status
    assert "Connector `crm`: 🟢 ok now, unhealthy for 2 h 00 min during the pilot (1 stretch)" in (
        status
    )
    assert "Connector `sheets`: 🟢 ok now, healthy throughout the pilot" in status

    await workflow_status.change_status(
        bot.deps.ctx,
        "acme",
        "invoice-sync",
        Status.LIVE,
        f.CLI,
        sign_off=workflow_status.SignOff("Jane", "mail"),
        rollback_plan="pause it",
    )
    live = (
        await bot.command("status invoice-sync", user=f.MEMBER, channel=await channel(bot))
    ).text
    assert "Status: *live*" in live
    assert "Pilot record" not in live


async def test_the_go_live_form_warns_on_recent_declines_and_too_few_approvals(
    bot: Bot, clock: FakeClock
) -> None:
    await pilot_scenario(bot.deps, clock)
    form = await go_live_form(bot)
    warning = form[BlockId.GO_LIVE_WARNINGS]
    assert "declined 1 run in the last 7 days" in warning
    assert f"<@{f.OWNER}>: “{DECLINE_REASON}”" in warning
    assert "asks for at least" not in warning, "2 approved runs meet the default minimum of 1"
    assert "2 approved, 1 declined, 1 expired, 1 pending" in form[BlockId.PILOT_RECORD]

    await set_minimum(bot, 3)
    warning = (await go_live_form(bot))[BlockId.GO_LIVE_WARNINGS]
    assert "declined 1 run" in warning
    assert (
        "The pilot has 2 approved runs of its current plan; this workspace asks for at least 3"
        in (warning)
    )

    # A week later the decline is no longer recent, and 2 approved runs meet a minimum of 2.
    clock.advance(timedelta(days=7, minutes=1))
    await set_minimum(bot, 2)
    form = await go_live_form(bot)
    assert BlockId.GO_LIVE_WARNINGS not in form
    assert "1 declined" in form[BlockId.PILOT_RECORD]


async def test_a_pilot_without_approved_runs_is_warned_and_can_still_go_live(
    bot: Bot, acme: str
) -> None:
    form = await go_live_form(bot)
    assert "The pilot has 0 approved runs of its current plan" in form[BlockId.GO_LIVE_WARNINGS]
    assert "0 approved, 0 declined" in form[BlockId.PILOT_RECORD]

    run = await f.request(bot.deps)
    await decisions.decide(bot.deps.ctx, run.id, Actor.slack(f.ADMIN), Verdict.APPROVE)
    form = await go_live_form(bot)
    assert BlockId.GO_LIVE_WARNINGS not in form, "1 approved run, no decline: nothing to warn of"
    assert "1 approved, 0 declined" in form[BlockId.PILOT_RECORD]

    # A warning never blocks: with a minimum of 5 the form still submits.
    await set_minimum(bot, 5)
    view = await open_form(bot)
    assert "at least 5" in sections(view)[BlockId.GO_LIVE_WARNINGS]
    submitted = await bot.send(
        bot.slack.view_submission(
            user=f.ADMIN,
            callback_id=Callback.PROMOTE_LIVE,
            private_metadata=view["private_metadata"],
            values={
                BlockId.SIGNED_OFF_BY: {Action.SIGNED_OFF_BY: text_input("Jane (client)")},
                BlockId.EVIDENCE: {Action.EVIDENCE: text_input("mail of 2026-01-06")},
            },
        )
    )
    assert submitted.status == 200
    assert (
        await workflows.get_workflow(bot.deps.ctx, "acme", "invoice-sync")
    ).status is Status.LIVE

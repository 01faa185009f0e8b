"""Connector alerts you can act on, through signed Slack requests into the running server:
pause from the alert, the alert updated in place, resume from the recovery notice."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tests import factories as f
from tests.harness import Bot, eventually
from trame_bot.clock import FakeClock
from trame_bot.domain.enums import Status
from trame_bot.domain.health import Report
from trame_bot.sandbox.block_kit import block_errors
from trame_bot.sandbox.fake_records import Message
from trame_bot.services import connectors, workflow_status, workflows
from trame_bot.slack.ids import Action
from trame_bot.store.models import AuditEvent, Workspace

REASON = "connector crm needs attention: 401 token revoked"


async def incident_workspace(bot: Bot, key: str = "acme") -> Workspace:
    """crm and sheets (granted write), a live and a pilot workflow using crm, and a pilot one
    that does not."""
    ws = await f.workspace(bot.deps, key)
    await f.connector(bot.deps, key, "crm", scopes=["read", "write"])
    await f.connector(bot.deps, key, "sheets", toolkit="google-sheets", scopes=["read", "write"])
    await f.workflow(bot.deps, key, "invoice-sync")
    await f.workflow(
        bot.deps,
        key,
        "lead-digest",
        steps=[{"name": "Read", "tool": "crm.query", "connector": "crm", "access": "read"}],
    )
    await f.workflow(
        bot.deps,
        key,
        "sheet-only",
        steps=[{"name": "Read", "tool": "sheets.get", "connector": "sheets", "access": "read"}],
    )
    await workflow_status.change_status(
        bot.deps.ctx,
        key,
        "invoice-sync",
        Status.LIVE,
        f.CLI,
        sign_off=workflow_status.SignOff("Jane", "mail of 1 Dec"),
        rollback_plan="pause it",
    )
    return ws


async def report(bot: Bot, health: Report, key: str = "acme", error: str | None = None) -> None:
    await connectors.report_health(bot.deps.ctx, key, "crm", health, error, f.CLI)
    await bot.delivered()


def posted(bot: Bot, channel: str, words: str) -> Message:
    found = [m for m in bot.fake.messages(channel) if words in m.text]
    assert found, f"no message with {words!r} in {channel}"
    return found[-1]


def button(message: Message | list[dict[str, Any]], action: Action) -> dict[str, Any] | None:
    blocks = message if isinstance(message, list) else message.blocks
    for block in blocks:
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            if element.get("action_id") == action.value:
                return dict(element)
    return None


def updates(bot: Bot, ts: str) -> list[list[dict[str, Any]]]:
    """The blocks of every chat.update of the message `ts`, oldest first."""
    found = []
    for call in bot.fake.calls_to("chat.update"):
        if call.args.get("ts") == ts:
            blocks = call.args["blocks"]
            found.append(json.loads(blocks) if isinstance(blocks, str) else blocks)
    return found


async def click(
    bot: Bot, action: Action, message: Message, who: str, value: str | None = None
) -> None:
    """Click the message's button, or (`value`) a copy of it seen before it was updated."""
    if value is None:
        found = button(message, action)
        assert found is not None, f"no {action} button"
        value = str(found["value"])
    answer = await bot.click(action, value, user=who, channel=message.channel, ts=message.ts)
    assert answer.status == 200


async def statuses(bot: Bot, key: str = "acme") -> dict[str, Status]:
    return {w.key: w.status for w in await workflows.list_workflows(bot.deps.ctx, key)}


async def status_events(bot: Bot, reason: str) -> list[str]:
    async with bot.deps.db.reading() as session:
        rows = await session.scalars(
            select(AuditEvent.entity_id)
            .where(AuditEvent.action == "workflow.status_changed", AuditEvent.reason == reason)
            .order_by(AuditEvent.id)
        )
        return list(rows)


async def test_pause_from_the_alert_then_resume_from_the_recovery_notice(bot: Bot) -> None:
    ws = await incident_workspace(bot)
    ops = ws.alerts_channel
    run = await f.request(bot.deps, "acme", "lead-digest")
    await report(bot, Report.ERROR, error="401 token revoked")
    alert = posted(bot, ops, "needs attention")
    assert block_errors(alert.blocks) == []
    text = json.dumps(alert.blocks)
    assert text.index("Invoice sync") < text.index("Lead digest"), "live first"
    pause = button(alert, Action.PAUSE_AFFECTED)
    assert pause is not None
    assert "Invoice sync" in pause["confirm"]["text"]["text"]

    await click(bot, Action.PAUSE_AFFECTED, alert, f.MEMBER)
    assert "Paused" in (await bot.told(f.MEMBER))[-1]
    await bot.delivered()
    assert await statuses(bot) == {
        "invoice-sync": Status.PAUSED,
        "lead-digest": Status.PAUSED,
        "sheet-only": Status.PILOT,
    }
    assert sorted(await status_events(bot, REASON)) == ["invoice-sync", "lead-digest"]
    assert (await bot.state_of(run.id)).value == "cancelled"
    (updated,) = updates(bot, alert.ts)
    assert block_errors(updated) == []
    assert button(updated, Action.PAUSE_AFFECTED) is None, "the button is gone"
    assert f"<@{f.MEMBER}> paused Invoice sync, Lead digest" in json.dumps(updated)

    await click(bot, Action.PAUSE_AFFECTED, alert, f.OTHER, pause["value"])  # seen before
    assert "already done: paused by" in (await bot.told(f.OTHER))[-1]
    assert len(await status_events(bot, REASON)) == 2

    await report(bot, Report.OK)
    notice = posted(bot, ops, "healthy again")
    assert block_errors(notice.blocks) == []
    assert "Invoice sync, Lead digest" in json.dumps(notice.blocks)
    await click(bot, Action.RESUME_PAUSED, notice, f.MEMBER)
    assert "needs the admin role" in (await bot.told(f.MEMBER, 2))[-1]
    resume = button(notice, Action.RESUME_PAUSED)
    assert resume is not None
    await click(bot, Action.RESUME_PAUSED, notice, f.ADMIN)
    assert "Resumed" in (await bot.told(f.ADMIN))[-1]
    await bot.delivered()
    assert await statuses(bot) == {
        "invoice-sync": Status.LIVE,
        "lead-digest": Status.PILOT,
        "sheet-only": Status.PILOT,
    }
    (resumed,) = updates(bot, notice.ts)
    assert block_errors(resumed) == []
    assert button(resumed, Action.RESUME_PAUSED) is None
    assert f"<@{f.ADMIN}> resumed" in json.dumps(resumed)
    await click(bot, Action.RESUME_PAUSED, notice, f.OWNER, resume["value"])
    assert "already done: resumed by" in (await bot.told(f.OWNER))[-1]


async def test_two_people_pulling_the_brake_at_once_pause_once(bot: Bot) -> None:
    ws = await incident_workspace(bot)
    await report(bot, Report.ERROR, error="401 token revoked")
    alert = posted(bot, ws.alerts_channel, "needs attention")
    await asyncio.gather(
        click(bot, Action.PAUSE_AFFECTED, alert, f.MEMBER),
        click(bot, Action.PAUSE_AFFECTED, alert, f.OTHER),
    )
    told = [(await bot.told(f.MEMBER))[-1], (await bot.told(f.OTHER))[-1]]
    assert sorted("already done" in t for t in told) == [False, True], told
    await bot.delivered()
    assert sorted(await status_events(bot, REASON)) == ["invoice-sync", "lead-digest"]
    assert len(updates(bot, alert.ts)) == 1


async def test_pausing_after_the_recovery_is_allowed_and_the_notice_offers_to_resume(
    bot: Bot,
) -> None:
    ws = await incident_workspace(bot)
    await report(bot, Report.ERROR, error="401 token revoked")
    await report(bot, Report.OK)
    alert = posted(bot, ws.alerts_channel, "needs attention")
    notice = posted(bot, ws.alerts_channel, "healthy again")
    assert button(notice, Action.RESUME_PAUSED) is None, "nothing paused yet"
    await click(bot, Action.PAUSE_AFFECTED, alert, f.MEMBER)
    assert "had recovered already" in (await bot.told(f.MEMBER))[-1]
    await bot.delivered()
    assert (await statuses(bot))["invoice-sync"] is Status.PAUSED
    (offered,) = updates(bot, notice.ts)
    assert block_errors(offered) == []
    assert button(offered, Action.RESUME_PAUSED) is not None


async def test_resuming_while_the_connector_is_unhealthy_again_is_refused(bot: Bot) -> None:
    ws = await incident_workspace(bot)
    await report(bot, Report.ERROR, error="401 token revoked")
    await click(
        bot, Action.PAUSE_AFFECTED, posted(bot, ws.alerts_channel, "needs attention"), f.MEMBER
    )
    await bot.told(f.MEMBER)
    await bot.delivered()
    await report(bot, Report.OK)
    notice = posted(bot, ws.alerts_channel, "healthy again")
    await report(bot, Report.ERROR, error="500 upstream down")
    await click(bot, Action.RESUME_PAUSED, notice, f.ADMIN)
    refused = (await bot.told(f.ADMIN))[-1]
    assert "needs_attention again (500 upstream down)" in refused
    assert (await statuses(bot))["invoice-sync"] is Status.PAUSED


async def test_a_forged_button_naming_another_workspaces_alert_is_refused(bot: Bot) -> None:
    acme = await incident_workspace(bot)
    globex = await incident_workspace(bot, "globex")
    await report(bot, Report.ERROR, key="globex", error="401 token revoked")
    theirs = button(posted(bot, globex.alerts_channel, "needs attention"), Action.PAUSE_AFFECTED)
    assert theirs is not None
    answer = await bot.click(
        Action.PAUSE_AFFECTED, theirs["value"], user=f.OWNER, channel=acme.alerts_channel
    )
    assert answer.status == 200
    assert "belongs to another workspace" in (await bot.told(f.OWNER))[-1]
    assert (await statuses(bot, "globex"))["invoice-sync"] is Status.LIVE

    async def nothing_paused() -> bool:
        return not await status_events(bot, REASON)

    await eventually(nothing_paused)


async def test_resume_them_leaves_out_a_workflow_someone_changed_since(
    bot: Bot, clock: FakeClock
) -> None:
    ws = await incident_workspace(bot)
    await report(bot, Report.ERROR, error="401 token revoked")
    await click(
        bot, Action.PAUSE_AFFECTED, posted(bot, ws.alerts_channel, "needs attention"), f.MEMBER
    )
    await bot.told(f.MEMBER)
    clock.advance(timedelta(minutes=5))
    await f.workflow(  # someone took over lead-digest: edited while paused
        bot.deps,
        "acme",
        "lead-digest",
        name="Lead digest v2",
        steps=[{"name": "Read", "tool": "crm.query", "connector": "crm", "access": "read"}],
    )
    clock.advance(timedelta(minutes=5))
    await report(bot, Report.OK)
    notice = posted(bot, ws.alerts_channel, "healthy again")
    (listed,) = [b for b in notice.blocks if "unchanged since" in json.dumps(b)]
    assert "Invoice sync" in json.dumps(listed)
    assert "Lead digest" not in json.dumps(listed)
    await click(bot, Action.RESUME_PAUSED, notice, f.ADMIN)
    assert "Resumed *Invoice sync*." in (await bot.told(f.ADMIN))[-1]
    assert (await statuses(bot))["lead-digest"] is Status.PAUSED

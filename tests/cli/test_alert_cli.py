"""`trame-bot alert`: the connector alert's buttons from the command line, run while the server
is up (as an operator would), so the alert's Slack message is seen updated by its outbox."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from click.testing import CliRunner, Result

from tests import factories as f
from tests.harness import Bot
from tests.slack.test_incidents import (
    REASON,
    button,
    incident_workspace,
    posted,
    report,
    status_events,
    statuses,
    updates,
)
from trame_bot.cli import cli
from trame_bot.clock import FakeClock
from trame_bot.domain.enums import Status
from trame_bot.domain.health import Report
from trame_bot.sandbox.block_kit import block_errors
from trame_bot.slack.ids import Action


async def trame_bot(bot: Bot, *args: str, ok: bool = True) -> Result:
    """The command in a thread (it runs its own event loop), on the server's database."""

    def invoke() -> Result:
        env = {"DATABASE_URL": bot.deps.settings.database_url, "LOG_LEVEL": "WARNING"}
        return CliRunner().invoke(cli, list(args), env=env)

    result = await asyncio.to_thread(invoke)
    # The command ran on the system clock: the server's (a fake one) catches up, or the outbox
    # rows the command queued would not be due yet for it.
    clock = bot.deps.clock
    if isinstance(clock, FakeClock):
        clock.set(max(clock.now(), datetime.now(UTC)))
    if ok:
        assert result.exit_code == 0, (result.output, result.stderr)
    else:
        assert result.exit_code == 1, (result.output, result.stderr)
    return result


async def test_pause_then_resume_from_the_command_line_updates_the_alerts_in_slack(
    bot: Bot,
) -> None:
    ws = await incident_workspace(bot)
    await report(bot, Report.ERROR, error="401 token revoked")
    alert = posted(bot, ws.alerts_channel, "needs attention")

    listed = await trame_bot(bot, "alert", "list", "acme")
    assert "crm" in listed.output
    assert "needs attention: 401 token revoked" in listed.output
    assert "pause-affected" in listed.output

    paused = await trame_bot(bot, "alert", "pause-affected", "acme", "crm", "--by", f.MEMBER)
    assert "paused from alert #1 (crm): invoice-sync (was live), lead-digest (was pilot)" in (
        paused.output
    )
    assert sorted(await status_events(bot, REASON)) == ["invoice-sync", "lead-digest"]
    # The command queued the update; the server's outbox delivers it, as after a click.
    await bot.delivered()
    (updated,) = updates(bot, alert.ts)
    assert block_errors(updated) == []
    assert button(updated, Action.PAUSE_AFFECTED) is None
    assert f"<@{f.MEMBER}> paused Invoice sync, Lead digest" in json.dumps(updated)

    again = await trame_bot(bot, "alert", "pause-affected", "acme", "#1", "--by", f.OTHER, ok=False)
    assert f"error: this was already done: paused by {f.MEMBER} at " in again.stderr
    assert " UTC" in again.stderr

    down = await trame_bot(bot, "alert", "resume", "acme", "crm", ok=False)
    assert "connector crm is needs_attention again (401 token revoked)" in down.stderr

    await report(bot, Report.OK)
    notice = posted(bot, ws.alerts_channel, "healthy again")
    member = await trame_bot(bot, "alert", "resume", "acme", "crm", "--by", f.MEMBER, ok=False)
    assert "admin" in member.stderr
    listed = await trame_bot(bot, "alert", "list", "acme", "--connector", "crm")
    assert f"paused by {f.MEMBER}" in listed.output
    assert "recovered (of #1)" in listed.output
    assert "resume: invoice-sync, lead-digest" in listed.output

    resumed = await trame_bot(bot, "alert", "resume", "acme", "crm", "--by", f.ADMIN)
    assert "resumed from recovery notice #2 (crm): invoice-sync (live), lead-digest (pilot)" in (
        resumed.output
    )
    assert await statuses(bot) == {
        "invoice-sync": Status.LIVE,
        "lead-digest": Status.PILOT,
        "sheet-only": Status.PILOT,
    }
    await bot.delivered()
    (notice_now,) = updates(bot, notice.ts)
    assert button(notice_now, Action.RESUME_PAUSED) is None
    assert f"<@{f.ADMIN}> resumed Invoice sync, Lead digest" in json.dumps(notice_now)
    twice = await trame_bot(bot, "alert", "resume", "acme", "2", ok=False)
    assert f"already done: resumed by {f.ADMIN} at " in twice.stderr


async def test_pausing_late_points_to_resume_and_the_operator_acts_as_cli(bot: Bot) -> None:
    await incident_workspace(bot)
    await report(bot, Report.ERROR, error="401 token revoked")
    await report(bot, Report.OK)
    late = await trame_bot(bot, "alert", "pause-affected", "acme", "crm")
    assert "has recovered already: `trame-bot alert resume acme crm`" in late.output
    listed = await trame_bot(bot, "alert", "list", "acme")
    assert "paused by cli at " in listed.output
    assert (await trame_bot(bot, "alert", "resume", "acme", "#2")).exit_code == 0


async def test_unknown_targets_and_another_workspaces_alert_are_not_found(bot: Bot) -> None:
    await incident_workspace(bot)
    await incident_workspace(bot, "globex")
    await report(bot, Report.ERROR, key="globex", error="401 token revoked")  # alert #1

    theirs = await trame_bot(bot, "alert", "pause-affected", "acme", "1", ok=False)
    assert "error: no connector or alert '1' in workspace acme" in theirs.stderr
    by_id = await trame_bot(bot, "alert", "resume", "acme", "#1", ok=False)
    assert "error: no connector alert #1 in workspace acme" in by_id.stderr
    unknown = await trame_bot(bot, "alert", "pause-affected", "acme", "nope", ok=False)
    assert "error: no connector 'nope' in workspace acme" in unknown.stderr
    quiet = await trame_bot(bot, "alert", "pause-affected", "acme", "crm", ok=False)
    assert "error: connector crm has had no “needs attention” alert" in quiet.stderr
    listing = await trame_bot(bot, "alert", "list", "acme", "--connector", "nope", ok=False)
    assert "no connector 'nope'" in listing.stderr
    no_workspace = await trame_bot(bot, "alert", "list", "initech", ok=False)
    assert "initech" in no_workspace.stderr
    assert (await statuses(bot, "globex"))["invoice-sync"] is Status.LIVE
    assert await status_events(bot, REASON) == []

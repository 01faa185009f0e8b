"""`/trame` over real HTTP: signatures, the channel's workspace, roles, and every subcommand."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests import factories as f
from tests.harness import Bot, eventually
from trame_bot.domain.enums import RunState, Status
from trame_bot.sandbox.slack_requests import text_input
from trame_bot.services import runs, workflows, workspaces
from trame_bot.slack.ids import Action, BlockId, Callback
from trame_bot.store.models import AuditEvent


async def audit_count(bot: Bot) -> int:
    async with bot.deps.db.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


@pytest.mark.parametrize(
    "forgery",
    ["bad signature", "stale timestamp", "future timestamp", "body changed", "no headers"],
)
async def test_unsigned_or_tampered_requests_get_401_and_change_nothing(
    bot: Bot, acme: str, forgery: str
) -> None:
    request = bot.slack.command("pause invoice-sync forged", user=f.OWNER, channel=acme)
    body, headers = request.body, dict(request.headers)
    if forgery == "bad signature":
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    elif forgery == "stale timestamp":
        headers = bot.slack.sign(body, int(time.time()) - 301)
    elif forgery == "future timestamp":
        # A minute beyond Slack's five: at +301 s, a second boundary between signing (the
        # time truncated) and the check (the time as it is) brought it back inside.
        headers = bot.slack.sign(body, int(time.time()) + 360)
    elif forgery == "body changed":
        body = body.replace(b"forged", b"hacked")
    else:
        headers = {"Content-Type": headers["Content-Type"]}
    before = await audit_count(bot)
    async with bot.session.post(bot.url, data=body, headers=headers) as response:
        assert response.status == 401
    assert await audit_count(bot) == before
    assert (
        await workflows.get_workflow(bot.deps.ctx, "acme", "invoice-sync")
    ).status is Status.PILOT


async def test_an_unbound_channel_gets_a_clear_answer(bot: Bot, acme: str) -> None:
    answer = await bot.command("status", user=f.OWNER, channel="C0NOWHERE")
    assert answer.status == 200
    assert "not connected to a trame-bot workspace" in answer.text
    assert "C0NOWHERE" in answer.text


@pytest.mark.parametrize("text", ["", "help", "frobnicate the thing", '"unbalanced'])
async def test_unknown_input_gets_help(bot: Bot, acme: str, text: str) -> None:
    answer = await bot.command(text, user=f.MEMBER, channel=acme)
    assert answer.status == 200
    assert "/trame pause <workflow> <reason>" in answer.text


async def test_status_workflows_connectors_and_approvals(bot: Bot, acme: str) -> None:
    await f.request(bot.deps, by=f.OWNER)
    status = (await bot.command("status", user=f.MEMBER, channel=acme)).text
    assert "workflows: 0 live, 1 pilot, 0 draft, 0 paused" in status
    assert "Pending approvals: 1" in status
    assert "Connectors needing attention: 0" in status
    assert "Audit chain:" in status
    one = (await bot.command("status INVOICE SYNC", user=f.MEMBER, channel=acme)).text
    assert "Status: *pilot*" in one
    assert "Trigger `nightly`: on" in one
    assert "*Pilot* (1)" in (await bot.command("workflows", user=f.MEMBER, channel=acme)).text
    assert "`crm`" in (await bot.command("connectors", user=f.MEMBER, channel=acme)).text
    waiting = (await bot.command("approvals", user=f.MEMBER, channel=acme)).text
    assert "Invoice sync" in waiting
    mine = (await bot.command("approvals", user=f.OWNER, channel=acme)).text
    assert "Nothing waits for your approval" in mine, "not your own run"
    stranger = (await bot.command("status", user="U0STRANGER", channel=acme)).text
    assert "is for members of this workspace" in stranger


async def test_a_name_sqlite_cannot_fold_is_matched_all_the_same(bot: Bot, acme: str) -> None:
    """SQLite lowercases only ASCII: `ÉTÉ` names no row in the one-statement reads, and the
    glance and the pause fall back to matching in Python, with the same answer."""
    await f.workflow(bot.deps, key="summer-sync", name="Été sync")
    await f.request(bot.deps, wf="summer-sync", by=f.OWNER)
    glance = (await bot.command("status ÉTÉ SYNC", user=f.MEMBER, channel=acme)).text
    assert "*Été sync* `summer-sync`" in glance
    assert "1 pending" in glance
    assert "Trigger `nightly`: on" in glance
    assert "Runs of this plan: 0 approved, 0 declined, 1 pending" in glance
    paused = await bot.command("pause été SYNC heat wave", user=f.MEMBER, channel=acme)
    assert "*Été sync* is paused" in paused.text
    assert (await workflows.get_workflow(bot.deps.ctx, "acme", "summer-sync")).status is (
        Status.PAUSED
    )


async def test_pause_cancels_pending_runs_and_is_announced(bot: Bot, acme: str) -> None:
    run = await f.request(bot.deps)
    await bot.delivered()
    asked = await bot.command("pause invoice-sync", user=f.MEMBER, channel=acme)
    assert "say why" in asked.text
    answer = await bot.command(
        'pause "Invoice sync" client asked to stop', user=f.MEMBER, channel=acme
    )
    assert "is paused" in answer.text
    assert await bot.state_of(run.id) is RunState.CANCELLED
    await bot.delivered()
    cancelled = bot.card(acme)
    assert "Cancelled" in cancelled.text
    assert not [b for b in cancelled.blocks if b["type"] == "actions"], "the card lost its buttons"
    notices = [m.text for m in bot.fake.messages(acme) if m.thread_ts is None]
    assert any(f"<@{f.MEMBER}> ⏸️ paused *Invoice sync*" in text for text in notices)
    refused = await bot.command("resume invoice-sync", user=f.MEMBER, channel=acme)
    assert "needs the admin role" in refused.text
    resumed = await bot.command("resume invoice-sync", user=f.ADMIN, channel=acme)
    assert "is pilot again" in resumed.text


async def test_a_workflow_of_another_workspace_is_unknown_here(bot: Bot, acme: str) -> None:
    await f.governed_workspace(bot.deps, "globex")
    await f.workflow(bot.deps, "globex", key="globex-secret")
    answer = await bot.command("pause globex-secret because", user=f.OWNER, channel=acme)
    assert "no workflow 'globex-secret'" in answer.text
    assert (
        await workflows.get_workflow(bot.deps.ctx, "globex", "globex-secret")
    ).status is Status.PILOT


async def test_members_cannot_run_admin_commands(bot: Bot, acme: str) -> None:
    for text, expected in [
        ("audit", "needs the admin role"),
        ("audit export", "needs the admin role"),
        ("trigger invoice-sync nightly on", "needs the admin role"),
        ("role <@U0NEW|newbie> member", "members cannot change roles"),
        ("promote invoice-sync live", "needs the admin role"),
    ]:
        answer = await bot.command(text, user=f.MEMBER, channel=acme)
        assert answer.status == 200
        assert expected in answer.text, text
    assert not bot.fake.calls_to("views.open"), "no form for someone who may not submit it"
    assert (
        "is now draft"
        in (await bot.command("demote invoice-sync draft", user=f.MEMBER, channel=acme)).text
    )
    assert (
        "now in pilot"
        in (await bot.command("promote invoice-sync pilot", user=f.MEMBER, channel=acme)).text
    )


async def test_triggers_and_roles(bot: Bot, acme: str) -> None:
    off = await bot.command("trigger invoice-sync nightly off", user=f.MEMBER, channel=acme)
    assert "is off" in off.text
    on = await bot.command("trigger invoice-sync nightly on", user=f.ADMIN, channel=acme)
    assert "is on" in on.text
    added = await bot.command("role <@U0NEW|newbie> member", user=f.ADMIN, channel=acme)
    assert "<@U0NEW> is now member" in added.text
    refused = await bot.command("role <@U0NEW|newbie> admin", user=f.ADMIN, channel=acme)
    assert "only an owner grants" in refused.text


async def test_promote_to_live_opens_a_sign_off_form(bot: Bot, acme: str) -> None:
    answer = await bot.command("promote invoice-sync live", user=f.ADMIN, channel=acme)
    assert answer.status == 200

    async def opened() -> bool:
        return bool(bot.fake.calls_to("views.open"))

    await eventually(opened)
    view = bot.fake.calls_to("views.open")[0].args["view"]
    view = json.loads(view) if isinstance(view, str) else view

    def submit(who: str, signed: str, evidence: str, plan: str) -> object:
        return bot.slack.view_submission(
            user=who,
            callback_id=Callback.PROMOTE_LIVE,
            private_metadata=view["private_metadata"],
            values={
                BlockId.SIGNED_OFF_BY: {Action.SIGNED_OFF_BY: text_input(signed)},
                BlockId.EVIDENCE: {Action.EVIDENCE: text_input(evidence)},
                BlockId.ROLLBACK_PLAN: {Action.ROLLBACK_PLAN: text_input(plan)},
            },
        )

    missing = await bot.send(submit(f.ADMIN, "Jane", " ", "pause it"))  # type: ignore[arg-type]
    assert missing.json["response_action"] == "errors"
    assert list(missing.json["errors"]) == [BlockId.EVIDENCE]
    member = await bot.send(submit(f.MEMBER, "Jane", "mail", "pause it"))  # type: ignore[arg-type]
    assert "needs the admin role" in json.dumps(member.json["errors"])
    done = await bot.send(submit(f.ADMIN, "Jane (client)", "mail of 2026-11-20", "pause, demote"))  # type: ignore[arg-type]
    assert done.status == 200
    assert (
        await workflows.get_workflow(bot.deps.ctx, "acme", "invoice-sync")
    ).status is Status.LIVE


async def test_audit_list_and_export_to_the_channel(bot: Bot, acme: str) -> None:
    listed = await bot.command("audit workflow:invoice-sync", user=f.ADMIN, channel=acme)
    assert "workflow.created" in listed.text
    answer = await bot.command("audit export", user=f.OWNER, channel=acme)
    assert "Exporting" in answer.text

    async def uploaded() -> bool:
        # The file exists from getUploadURLExternal on; it is shared once the upload completes.
        return any(m.files for m in bot.fake.messages(acme))

    await eventually(uploaded)
    (stored,) = bot.fake.files.values()
    rows = list(csv.DictReader(io.StringIO(stored.content.decode())))
    assert rows[0]["action"] == "workspace.created"
    assert any(m.files for m in bot.fake.messages(acme)), "shared in the channel"

    async def recorded() -> bool:
        async with bot.deps.db.reading() as session:
            return bool(
                await session.scalar(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(AuditEvent.action == "audit.exported")
                )
            )

    await eventually(recorded)


async def test_slack_rate_limits_and_errors_delay_delivery_but_lose_nothing(
    bot: Bot, acme: str
) -> None:
    bot.fake.fail_next("chat.postMessage", status=429, retry_after=1)
    bot.fake.fail_next("chat.postMessage", status=500, count=2)
    run = await f.request(bot.deps)

    async def posted() -> bool:
        # The client retries a little itself, then the outbox backs off: move its clock on.
        bot.deps.clock.advance(timedelta(seconds=30))  # type: ignore[attr-defined]
        return any(c.ok for c in bot.fake.calls_to("chat.postMessage"))

    await eventually(posted, within=10)
    await bot.delivered()
    assert bot.card(acme).blocks
    outcomes = [c.ok for c in bot.fake.calls_to("chat.postMessage")]
    assert outcomes.count(False) == 3
    assert outcomes[-1] is True
    assert await bot.state_of(run.id) is RunState.PENDING
    _ = runs


async def test_digest_now_is_posted_to_the_ops_channel_by_admins(bot: Bot, acme: str) -> None:
    refused = await bot.command("digest", user=f.MEMBER, channel=acme)
    assert "needs the admin role" in refused.text
    answer = await bot.command("digest", user=f.ADMIN, channel=acme)
    assert "on its way" in answer.text
    await bot.delivered()
    ops = (await workspaces.get_workspace(bot.deps.ctx, "acme")).alerts_channel
    (digest,) = bot.fake.messages(ops)
    assert "All clear" in digest.text

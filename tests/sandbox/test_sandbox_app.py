"""The sandbox end to end over HTTP, without a browser: the server `serve --sandbox` builds, the
page's intents in, the bot's answers (through its real Slack client and the fake) out.

Always on SQLite: the sandbox refuses any other database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.harness import eventually
from tests.sandbox.sandboxes import Sandbox, running
from trame_bot.bootstrap import Deps
from trame_bot.cli import cli
from trame_bot.config import Distributed, Settings
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Health, Status
from trame_bot.domain.rollback import read_stored
from trame_bot.sandbox import seed
from trame_bot.sandbox.app import loopback_url, sandbox_settings
from trame_bot.sandbox.slack_requests import SlackRequests
from trame_bot.services import audit, connectors, workflows, workspaces
from trame_bot.store.audit import AuditFilter

OLIVIA, ADAM, MIA, CLARA = (p.id for p in seed.PEOPLE)


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with running(tmp_path) as started:
        yield started


# ---- the demo workspace ----------------------------------------------------------------------


async def _snapshot(deps: Deps) -> tuple[Any, ...]:
    ctx = deps.ctx
    return (
        sorted((w.key, w.status, w.version) for w in await workflows.list_workflows(ctx, "acme")),
        sorted((c.key, c.health) for c in await connectors.list_connectors(ctx, "acme")),
        sorted((m.slack_user_id, m.role) for m in await workspaces.list_members(ctx, "acme")),
        await audit.count_events(ctx, "acme", AuditFilter(), Actor.cli()),
    )


async def test_the_demo_workspace_is_seeded_once(sandbox: Sandbox) -> None:
    ctx = sandbox.deps.ctx
    statuses = {w.key: w for w in await workflows.list_workflows(ctx, seed.WORKSPACE)}
    assert {k: w.status for k, w in statuses.items()} == {
        "invoice-sync": Status.PILOT,
        "vendor-onboarding": Status.PILOT,
        "lead-digest": Status.DRAFT,
        "payroll-export": Status.LIVE,
    }
    live = statuses["payroll-export"]
    assert live.production
    assert (live.signed_off_by, read_stored(live.rollback_plan).notes) == (
        seed.SIGN_OFF.by,
        seed.ROLLBACK_PLAN,
    )
    assert statuses["invoice-sync"].reviewers == [CLARA]
    health = {c.key: c.health for c in await connectors.list_connectors(ctx, seed.WORKSPACE)}
    assert health["acme-hubspot"] is not Health.OK
    assert [h for k, h in health.items() if k != "acme-hubspot"] == [Health.OK, Health.OK]
    roles = {m.slack_user_id: m.role.value for m in await workspaces.list_members(ctx, "acme")}
    assert roles == {OLIVIA: "owner", ADAM: "admin", MIA: "member"}  # Clara reviews, no role

    before = await _snapshot(sandbox.deps)
    assert await seed.seed(ctx) is False
    assert await _snapshot(sandbox.deps) == before


async def test_each_start_makes_a_new_api_key_and_revokes_the_last(sandbox: Sandbox) -> None:
    assert (await sandbox.api("GET", "/workflows"))[0] == 200
    old = sandbox.api_key
    sandbox.api_key = await seed.fresh_api_key(sandbox.deps.ctx)
    assert (await sandbox.api("GET", "/workflows"))[0] == 200
    sandbox.api_key = old
    assert (await sandbox.api("GET", "/workflows"))[0] == 401


async def test_the_seed_history_shows_in_the_channels(sandbox: Sandbox) -> None:
    async def shown() -> bool:
        state = await sandbox.state(OLIVIA)
        return "Approved: Payroll export" in state["channels"][0]["html"] and (
            "acme-hubspot" in state["channels"][1]["html"]
        )

    await eventually(shown)


# ---- commands ----------------------------------------------------------------------------


async def test_a_command_reaches_the_bot_signed_and_its_reply_shows_to_that_user(
    sandbox: Sandbox,
) -> None:
    answer = await sandbox.post(
        "command", user=OLIVIA, channel=seed.APPROVALS, text="/trame workflows"
    )
    assert answer == {"ok": True, "error": None, "errors": {}}
    mine = await sandbox.approvals(OLIVIA)
    assert "/trame workflows" in mine
    assert "Only visible to you" in mine
    assert "Payroll export" in mine
    assert "Vendor onboarding" in mine
    assert "/trame workflows" not in await sandbox.approvals(ADAM)

    # The bot checked the signature: the same command signed with another secret is refused.
    forged = SlackRequests("not-the-secret").command(
        "workflows", user=OLIVIA, channel=seed.APPROVALS
    )
    async with sandbox.session.post(
        f"{sandbox.url}/slack/events", data=forged.body, headers=forged.headers
    ) as response:
        assert response.status == 401


async def test_slow_answers_arrive_through_the_response_url(sandbox: Sandbox) -> None:
    await sandbox.post("command", user=ADAM, channel=seed.APPROVALS, text="/trame audit export")

    async def uploaded() -> bool:
        return "The audit export is in the channel" in await sandbox.approvals(ADAM)

    await eventually(uploaded)
    html = await sandbox.approvals(ADAM)
    assert "Exporting the audit log" in html  # the ack
    stored = next(iter(sandbox.fake.files.values()))
    assert f'href="/sandbox/files/{stored.id}"' in html
    async with sandbox.session.get(f"{sandbox.url}/sandbox/files/{stored.id}") as response:
        assert response.status == 200
        assert response.headers["Content-Disposition"].startswith("attachment;")
        csv = await response.text()
    assert csv.startswith("seq,at,actor,action")
    assert "workflow.status_changed" in csv
    assert "The audit export is in the channel" not in await sandbox.approvals(OLIVIA)


async def test_only_the_slash_command_is_installed(sandbox: Sandbox) -> None:
    answer = await sandbox.post("command", user=MIA, channel=seed.APPROVALS, text="/giphy cat")
    assert answer["ok"] is False
    assert "/trame" in answer["error"]


# ---- clicks and forms --------------------------------------------------------------------


async def test_a_click_decides_a_run(sandbox: Sandbox) -> None:
    run_id = await sandbox.request_run("vendor-onboarding")
    ts = await sandbox.card_of(run_id)
    assert "Approval needed: Vendor onboarding" in await sandbox.approvals(ADAM)

    click = {"block_id": "run_actions", "action_id": "run_approve", "value": run_id}
    answer = await sandbox.post("action", user=ADAM, channel=seed.APPROVALS, ts=ts, **click)
    assert answer["ok"] is True
    assert await sandbox.run_state(run_id) == "approved"

    async def updated() -> bool:
        return "Approved: Vendor onboarding" in await sandbox.approvals(MIA)

    await eventually(updated)
    # A late click by someone else is told who decided, in an ephemeral line for them only.
    await sandbox.post("action", user=OLIVIA, channel=seed.APPROVALS, ts=ts, **click)

    async def told() -> bool:
        return "already approved" in await sandbox.approvals(OLIVIA)

    await eventually(told)
    assert "already approved" not in await sandbox.approvals(ADAM)


async def test_decline_opens_the_form_for_the_clicker_and_shows_the_bots_field_errors(
    sandbox: Sandbox,
) -> None:
    run_id = await sandbox.request_run("invoice-sync")
    ts = await sandbox.card_of(run_id)
    await sandbox.post(
        "action",
        user=CLARA,
        channel=seed.APPROVALS,
        ts=ts,
        block_id="run_actions",
        action_id="run_decline",
        value=run_id,
    )

    async def opened() -> bool:
        return (await sandbox.state(CLARA))["modal"] is not None

    await eventually(opened)
    assert (await sandbox.state(MIA))["modal"] is None
    modal = (await sandbox.state(CLARA))["modal"]
    assert "Decline run" in modal["html"]
    assert "<textarea" in modal["html"]

    # Slack's client refuses an empty required field; the bot judges the reason's length.
    empty = await sandbox.post("submit", user=CLARA, view_id=modal["id"], values={})
    assert set(empty["errors"]) == {"decline_category", "decline_reason"}
    values = {"decline_category": "wrong_data", "decline_reason": "short"}
    short = await sandbox.post("submit", user=CLARA, view_id=modal["id"], values=values)
    assert short["errors"] == {"decline_reason": "Say a bit more: at least 10 characters."}
    shown = (await sandbox.state(CLARA))["modal"]["html"]
    assert "at least 10 characters" in shown
    assert ">short</textarea>" in shown

    values["decline_reason"] = "The sheet still holds last month's drafts."
    done = await sandbox.post("submit", user=CLARA, view_id=modal["id"], values=values)
    assert done["ok"] is True
    assert (await sandbox.state(CLARA))["modal"] is None
    assert await sandbox.run_state(run_id) == "declined"


async def test_the_app_home_is_published_when_opened(sandbox: Sandbox) -> None:
    assert (await sandbox.state(CLARA))["home"] is None
    await sandbox.request_run("invoice-sync")
    assert (await sandbox.post("home", user=CLARA))["ok"] is True

    async def published() -> bool:
        return (await sandbox.state(CLARA))["home"] is not None

    await eventually(published)
    assert "Waiting for your approval (1)" in (await sandbox.state(CLARA))["home"]


# ---- the page and its guards ---------------------------------------------------------------


async def test_the_page_is_served_with_a_strict_policy(sandbox: Sandbox) -> None:
    async with sandbox.session.get(f"{sandbox.url}/sandbox") as response:
        assert response.status == 200
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert "/sandbox/static/sandbox.js" in await response.text()
    for asset in ("sandbox.js", "sandbox.css"):
        async with sandbox.session.get(f"{sandbox.url}/sandbox/static/{asset}") as response:
            assert response.status == 200
    async with sandbox.session.get(f"{sandbox.url}/sandbox/static/..%2Fapp.py") as response:
        assert response.status == 404


async def test_intents_take_json_from_known_people_only(sandbox: Sandbox) -> None:
    form = {"user": OLIVIA, "channel": seed.APPROVALS, "text": "/trame help"}
    async with sandbox.session.post(f"{sandbox.url}/sandbox/command", data=form) as response:
        assert response.status == 415  # a cross-site form cannot send JSON without preflight
    stranger = {**form, "user": "U0MALLORY"}
    async with sandbox.session.post(f"{sandbox.url}/sandbox/command", json=stranger) as response:
        assert response.status == 400
    elsewhere = {**form, "channel": "C0ELSEWHERE"}
    async with sandbox.session.post(f"{sandbox.url}/sandbox/command", json=elsewhere) as response:
        assert response.status == 400


# ---- the command line ----------------------------------------------------------------------


def test_serve_without_slack_suggests_the_sandbox(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["serve"],
        env={
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "SLACK_BOT_TOKEN": "",
            "SLACK_SIGNING_SECRET": "",
        },
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET are not set")
    assert "trame-bot serve --sandbox" in result.stderr


def test_the_sandbox_refuses_postgresql() -> None:
    result = CliRunner().invoke(
        cli,
        ["serve", "--sandbox"],
        env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/prod"},
    )
    assert result.exit_code == 2
    assert "SQLite only" in result.stderr


def test_sandbox_settings_run_distributed_against_the_fake(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'trame-bot.db'}"
    url = "http://127.0.0.1:3000"
    settings = sandbox_settings(Settings(database_url=database, slack_bot_token="xoxb-real"), url)
    mode = settings.slack_mode()
    assert isinstance(mode, Distributed)
    assert settings.slack_bot_token is None
    assert settings.slack_api_url == f"{url}/sandbox/slack/api/"
    assert mode.authorize_url == f"{url}/sandbox/slack/oauth/v2/authorize"
    assert mode.public_url == url
    # The key lives beside the database, for the owner only, and the next start reads it.
    key_file = tmp_path / "trame-bot.db.key"
    assert settings.encryption_keys == (key_file.read_text().strip(),)
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = sandbox_settings(Settings(database_url=database), url)
    assert again.encryption_keys == settings.encryption_keys
    assert again.slack_client_secret != settings.slack_client_secret
    assert loopback_url("0.0.0.0", 8080) == "http://127.0.0.1:8080"
    assert loopback_url("::1", 8080) == "http://[::1]:8080"

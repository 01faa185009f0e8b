"""The README's incident step over the page's HTTP endpoints (tests/browser walks it in a
browser): the Engine panel's health report breaks and recovers a connector through the engine's
API, the alert's buttons are clicked as Slack would send them, and the command line and the API
act on the same alerts while the sandbox runs, its messages updated in place on the page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.harness import eventually
from tests.sandbox.sandboxes import Sandbox, running
from trame_bot.cli import cli
from trame_bot.sandbox import seed
from trame_bot.slack.ids import Action

OLIVIA, ADAM, MIA, CLARA = (p.id for p in seed.PEOPLE)
BROKEN = "401 from Salesforce: session expired"


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with running(tmp_path) as started:
        yield started


async def ops(sandbox: Sandbox, user: str = OLIVIA) -> str:
    return str((await sandbox.state(user))["channels"][1]["html"])


async def shows(sandbox: Sandbox, *words: str, user: str = OLIVIA) -> str:
    """The ops channel, once it shows all of ``words``."""

    async def shown() -> bool:
        html = await ops(sandbox, user)
        return all(w in html for w in words)

    await eventually(shown, within=10)
    return await ops(sandbox, user)


async def health(sandbox: Sandbox, status: str, error: str | None = None) -> str:
    """What the Engine panel's *Report connector health* sends."""
    body = {"status": status, **({"error": error} if error else {})}
    code, answer = await sandbox.api("POST", "/connectors/acme-salesforce/health", body)
    assert code == 200, answer
    return str(answer["health"])


def alert_button(sandbox: Sandbox, action: Action, words: str) -> tuple[str, str, str]:
    """The ts, block and value of the button ``action`` on the ops message holding ``words``."""
    for message in reversed(sandbox.fake.messages(seed.OPS)):
        if words not in message.text:
            continue
        for block in message.blocks:
            for element in block.get("elements", []) if block["type"] == "actions" else []:
                if element.get("action_id") == action.value:
                    return message.ts, str(block.get("block_id")), str(element["value"])
    raise AssertionError(f"no {action} button on a message with {words!r}")


async def click(sandbox: Sandbox, user: str, action: Action, words: str) -> None:
    ts, block, value = alert_button(sandbox, action, words)
    outcome = await sandbox.post(
        "action",
        user=user,
        channel=seed.OPS,
        ts=ts,
        block_id=block,
        action_id=action.value,
        value=value,
    )
    assert outcome["ok"], outcome


async def trame_bot(sandbox: Sandbox, *args: str) -> Result:
    """The command line on the sandbox's database while it runs, as the README suggests."""

    def invoke() -> Result:
        env = {"DATABASE_URL": sandbox.deps.settings.database_url, "LOG_LEVEL": "WARNING"}
        return CliRunner().invoke(cli, list(args), env=env)

    return await asyncio.to_thread(invoke)


async def test_the_incident_step_with_the_buttons(sandbox: Sandbox) -> None:
    connectors = (await sandbox.state(OLIVIA))["engine"]["connectors"]
    assert {"key": "acme-salesforce", "toolkit": "salesforce", "health": "ok"} in connectors

    assert await health(sandbox, "error", BROKEN) == "needs_attention"
    await shows(
        sandbox,
        "acme-salesforce",
        BROKEN,
        "Affects: Payroll export (live), Invoice sync (pilot), Vendor onboarding (pilot)",
    )
    await click(sandbox, MIA, Action.PAUSE_AFFECTED, "acme-salesforce")
    await shows(sandbox, "Paused <strong>Invoice sync</strong>", user=MIA)
    html = await shows(sandbox, "paused Invoice sync, Payroll export, Vendor onboarding")
    assert '<span class="mention">@Mia</span> paused Invoice sync' in html

    assert await health(sandbox, "ok") == "ok"
    await shows(sandbox, "is healthy again", "Resume them")
    await click(sandbox, MIA, Action.RESUME_PAUSED, "healthy again")
    await shows(sandbox, "needs the admin role", user=MIA)
    await click(sandbox, ADAM, Action.RESUME_PAUSED, "healthy again")
    await shows(sandbox, "resumed Invoice sync, Payroll export, Vendor onboarding")
    _, listed = await sandbox.api("GET", "/workflows")
    statuses = {w["key"]: w["status"] for w in listed["items"]}
    assert statuses["payroll-export"] == "live"

    outcome = await sandbox.post(
        "command",
        user=OLIVIA,
        channel=seed.OPS,
        text="/trame report connector:acme-salesforce",
    )
    assert outcome["ok"], outcome
    await shows(sandbox, ".pdf", ".jsonl", "trame-bot audit verify --file incident-")


async def test_the_command_line_and_the_api_act_on_the_sandboxs_alerts(sandbox: Sandbox) -> None:
    await health(sandbox, "error", BROKEN)
    await shows(sandbox, BROKEN)
    paused = await trame_bot(
        sandbox, "alert", "pause-affected", "acme", "acme-salesforce", "--by", MIA
    )
    assert paused.exit_code == 0, paused.stderr
    assert "payroll-export (was live)" in paused.output
    # The command queued the update; the sandbox's server posts it: the page shows it.
    await shows(sandbox, "paused Invoice sync, Payroll export, Vendor onboarding")

    await health(sandbox, "ok")
    await shows(sandbox, "Resume them")
    _, alerts = await sandbox.api("GET", "/alerts?connector=acme-salesforce")
    notice = alerts["items"][0]
    assert notice["kind"] == "recovered"
    code, resumed = await sandbox.api("POST", f"/alerts/{notice['id']}/resume", {"actor": ADAM})
    assert code == 200, resumed
    await shows(sandbox, "resumed Invoice sync, Payroll export, Vendor onboarding")
    again = await trame_bot(sandbox, "alert", "resume", "acme", "acme-salesforce")
    assert again.exit_code == 1
    assert f"already done: resumed by {ADAM}" in again.stderr

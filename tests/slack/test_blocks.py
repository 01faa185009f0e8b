"""Block Kit builders stay valid for any input Slack's limits can meet, and never let user
text ping a channel or forge a mention or a link."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trame_bot.domain.enums import Access, Health, RunState, Source, Status, Verdict
from trame_bot.domain.views import (
    ConnectorLine,
    DecisionView,
    HomeSection,
    PendingView,
    RunCard,
    StepView,
    WorkflowLine,
    WorkflowList,
)
from trame_bot.sandbox.block_kit import (
    MAX_BLOCK_TEXT_TOTAL,
    block_errors,
    block_text_length,
    view_errors,
)
from trame_bot.slack.blocks.card import approval_card
from trame_bot.slack.blocks.digest import digest_message
from trame_bot.slack.blocks.home import home_view
from trame_bot.slack.blocks.modals import decline_modal, promote_live_modal
from trame_bot.slack.blocks.notices import channel_notice, connector_alert, outcome_dm, thread_reply
from trame_bot.slack.ids import Action

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
HOSTILE = "<!channel> <@U0BOSS> <http://evil.example|click me> *bold* `code` &amp; <#C0SECRET>"
RTL = "עדכון חשבוניות ללקוח — مزامنة الفواتير"
EMOJI = "🧾💸🚀" * 40


def card(**overrides: Any) -> RunCard:
    fields: dict[str, Any] = {
        "run_id": "0" * 32,
        "workspace_key": "acme",
        "channel": "C0APPROVE",
        "slack_ts": None,
        "workflow_key": "invoice-sync",
        "workflow_name": "Invoice sync",
        "workflow_status": Status.PILOT,
        "production": False,
        "requested_by": "U0MEMBER",
        "source": Source.MANUAL,
        "trigger": None,
        "steps": (
            StepView("Fetch", "salesforce.query", "crm", Access.READ, Health.OK),
            StepView("Append", "sheets.append", "sheets", Access.WRITE, Health.NEEDS_ATTENTION),
        ),
        "details": {"finance_sheet": "ht••••23"},
        "prompt_warnings": (),
        "fingerprint": "ab" * 32,
        "approvals": 0,
        "required_approvals": 2,
        "reviewers": (),
        "state": RunState.PENDING,
        "reason": None,
        "decided_by": None,
        "decided_at": None,
        "requested_at": NOW,
        "expires_at": NOW + timedelta(hours=24),
        "decisions": (),
    }
    return RunCard(**{**fields, **overrides})


def valid_message(text: str, blocks: list[dict[str, Any]]) -> None:
    assert text.strip(), "a meaningful fallback text"
    assert len(text) <= 3000
    assert block_errors(blocks) == []
    assert block_text_length(blocks) <= MAX_BLOCK_TEXT_TOTAL


def all_text(blocks: Any) -> str:
    """Every mrkdwn string in the blocks (plain_text never parses mentions or links)."""
    if isinstance(blocks, list):
        return "\n".join(all_text(b) for b in blocks)
    if isinstance(blocks, dict) and blocks.get("type") == "plain_text":
        return ""
    if isinstance(blocks, dict):
        return "\n".join(
            all_text(v) if k != "text" or not isinstance(v, str) else v for k, v in blocks.items()
        )
    return ""


def no_injection(text: str) -> None:
    """No mention, channel ping or link that came from user text."""
    assert "<!channel>" not in text
    assert "<@U0BOSS>" not in text
    assert "<http://evil" not in text
    assert "<#C0SECRET>" not in text


def steps(count: int, name: str = "Step", access: Access = Access.WRITE) -> tuple[StepView, ...]:
    return tuple(
        StepView(
            f"{name} {i}",
            f"tool.{i}",
            f"conn-{i % 7}",
            access,
            Health.OK if i % 5 else Health.DISCONNECTED,
        )
        for i in range(count)
    )


@pytest.mark.parametrize(
    "plan",
    [
        steps(1),
        steps(500),
        steps(60, name="x" * 3000),
        steps(40, name=EMOJI),
        steps(40, name=RTL),
        steps(30, name=HOSTILE),
    ],
    ids=["one", "500 steps", "3000-char names", "emoji", "right-to-left", "hostile"],
)
@pytest.mark.parametrize("state", [RunState.PENDING, RunState.APPROVED, RunState.DECLINED])
def test_card_is_valid_block_kit_for_any_plan(plan: tuple[StepView, ...], state: RunState) -> None:
    text, blocks = approval_card(
        card(
            steps=plan,
            state=state,
            reason=HOSTILE if state is RunState.DECLINED else None,
            decided_by="U0ADMIN" if state.is_final else None,
            decided_at=NOW if state.is_final else None,
        )
    )
    valid_message(text, blocks)
    no_injection(all_text(blocks) + text)


def test_card_summarises_the_steps_it_cannot_show() -> None:
    _, blocks = approval_card(card(steps=steps(500)))
    shown = all_text(blocks)
    assert "Planned steps (500)" in shown
    assert re.search(r"…and \d+ more steps: \d+ with write access, \d+ on unhealthy", shown)


def test_card_flags_write_access_unhealthy_and_foreign_connectors() -> None:
    plan = (
        StepView("Read", "t.read", "crm", Access.READ, Health.OK),
        StepView("Write", "t.write", "sheets", Access.WRITE, Health.OK),
        StepView("Broken", "t.x", "mail", Access.READ, Health.NEEDS_ATTENTION),
        StepView("Foreign", "t.y", "globex-crm", Access.READ, None),
    )
    text = all_text(approval_card(card(steps=plan))[1])
    assert "✏️ *write*" in text
    assert "⚠️ connector needs attention" in text
    assert "⛔ not a connector of this workspace" in text


def test_pending_card_has_buttons_with_a_confirm_for_production() -> None:
    _, blocks = approval_card(card(production=True))
    actions = next(b for b in blocks if b["type"] == "actions")
    approve, decline = actions["elements"]
    assert (approve["action_id"], decline["action_id"]) == (Action.APPROVE, Action.DECLINE)
    assert approve["value"] == decline["value"] == "0" * 32
    assert "confirm" in approve
    _, plain = approval_card(card(production=False))
    assert "confirm" not in next(b for b in plain if b["type"] == "actions")["elements"][0]


def test_decided_card_has_no_buttons_and_names_the_decider() -> None:
    decisions = tuple(DecisionView(f"U0R{i}", Verdict.APPROVE, None, None, NOW) for i in range(30))
    text, blocks = approval_card(
        card(
            state=RunState.APPROVED,
            decided_by="U0ADMIN",
            decided_at=NOW,
            approvals=2,
            decisions=decisions,
        )
    )
    valid_message(text, blocks)
    assert not [b for b in blocks if b["type"] == "actions"]
    assert "Approved" in text
    assert "<@U0ADMIN>" in all_text(blocks)


def test_masked_details_and_prompt_warnings_show() -> None:
    text = all_text(approval_card(card(prompt_warnings=("the prompt contains a URL",)))[1])
    assert "ht••••23" in text
    assert "the prompt contains a URL" in text


def test_hostile_workflow_name_stays_inert_everywhere() -> None:
    text, blocks = approval_card(card(workflow_name=HOSTILE, requested_by=HOSTILE))
    no_injection(text + all_text(blocks))
    header = blocks[0]["text"]
    assert header["type"] == "plain_text", "plain text never pings or links"


@pytest.mark.parametrize(
    ("event", "data"),
    [
        (
            "run.decision",
            {"user": "U1", "verdict": "approve", "approvals": 1, "required": 2, "state": "pending"},
        ),
        (
            "run.decision",
            {"user": "U1", "verdict": "decline", "reason": HOSTILE, "category": "looks_risky"},
        ),
        ("run.expired", {"reason": "no decision within 1 day"}),
        ("run.cancelled", {"reason": HOSTILE * 100}),
        ("run.reminder", {"reviewers": ["U1", "U2"]}),
    ],
)
def test_thread_replies_are_valid(event: str, data: dict[str, Any]) -> None:
    text, blocks = thread_reply(event, data)
    valid_message(text, blocks)
    no_injection(text + all_text(blocks))


@pytest.mark.parametrize("state", ["approved", "declined", "expired", "cancelled"])
def test_outcome_dms_are_valid(state: str) -> None:
    text, blocks = outcome_dm(
        "run.decided",
        {"run_id": "r", "name": HOSTILE, "state": state, "decided_by": "U1", "reason": HOSTILE},
    )
    valid_message(text, blocks)
    no_injection(text + all_text(blocks))


def test_channel_notices_and_alerts_are_valid() -> None:
    change = {
        "workflow": "wf",
        "name": HOSTILE,
        "before": "pilot",
        "after": "paused",
        "user": "U1",
        "reason": HOSTILE,
    }
    workflows = [{"key": f"w{i}", "name": HOSTILE, "status": "live"} for i in range(40)]
    for text, blocks in (
        channel_notice("workflow.status_changed", change),
        channel_notice("workflow.status_changed", {**change, "before": "paused", "after": "pilot"}),
        connector_alert(
            "connector.needs_attention",
            {"connector": "crm", "error": HOSTILE, "workflows": workflows},
        ),
        connector_alert("connector.recovered", {"connector": "crm", "workflows": []}),
    ):
        valid_message(text, blocks)
        no_injection(text + all_text(blocks))


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "1 connector needs attention, 1 approval pending"),
        (2, "2 connectors need attention, 2 approvals pending"),
    ],
)
def test_counts_read_right_in_one_and_many(count: int, expected: str) -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
    text, blocks = digest_message(
        {
            "workspace": "Acme",
            "date": "2026-01-02",
            "unhealthy": [
                {"key": f"c{i}", "health": "failing", "since": since} for i in range(count)
            ],
            "pending": [
                {"workflow": "Invoice sync", "requested_at": since, "channel": "C1"}
                for _ in range(count)
            ],
            "audit_events": count,
        }
    )
    assert text.startswith(expected)
    assert f"Audit chain: {count} event{'s' if count > 1 else ''}," in all_text(blocks)
    reply, _ = thread_reply("run.decision", {"user": "U1", "approvals": 1, "required": count})
    assert f"(1 of {count} approval{'s' if count > 1 else ''})" in reply


def test_modals_are_valid_views() -> None:
    assert view_errors(decline_modal("r" * 32, HOSTILE * 50, "U1", "C1")) == []
    assert view_errors(promote_live_modal("acme", "wf", EMOJI * 20, "C1")) == []


def home_section(index: int, *, workflows: int = 60, connectors: int = 60) -> HomeSection:
    lines = tuple(
        WorkflowLine(
            f"wf-{i}",
            f"{RTL} {i}",
            list(Status)[i % 4],
            3,
            i % 2 == 0,
            i % 3,
            (("nightly", i % 2 == 0),),
            ("crm",),
        )
        for i in range(workflows)
    )
    return HomeSection(
        workspace_name=f"{HOSTILE} {index}",
        listing=WorkflowList(dict(Counter(w.status for w in lines)), lines),
        unhealthy=tuple(
            ConnectorLine(f"c-{i}", "salesforce", Health.NEEDS_ATTENTION, NOW, HOSTILE, None)
            for i in range(connectors)
        ),
        pending_runs=2,
        audit_head="f" * 64,
    )


def test_home_stays_within_100_blocks_for_large_workspaces() -> None:
    waiting = [
        PendingView(f"r{i}", "ws0", f"wf-{i}", HOSTILE, "U0M", NOW, 0, 1, "C0APPROVE", None)
        for i in range(200)
    ]
    view = home_view(waiting, [home_section(i) for i in range(40)])
    assert view_errors(view) == []
    assert len(view["blocks"]) <= 100
    no_injection(all_text(view["blocks"]))
    assert "…and 25 more workspaces" in all_text(view["blocks"])
    assert view_errors(home_view([], [])) == []


@pytest.mark.parametrize(
    ("total", "line"), [(15, None), (16, "…and 1 more workspace"), (40, "…and 25 more workspaces")]
)
def test_home_counts_the_workspaces_it_was_not_given(total: int, line: str | None) -> None:
    """App Home is given the sections it shows and how many workspaces there are in all."""
    text = all_text(home_view([], [home_section(i) for i in range(15)], total)["blocks"])
    assert text.count("more workspace") == (line is not None)
    assert line is None or line in text

"""The run gate against docs/governance.md: approval by status, and every reason a run is refused."""

from __future__ import annotations

from itertools import product
from typing import Any

import pytest

from trame_bot.domain.enums import Access, Health, RunState, Source, Status
from trame_bot.domain.gate import decide
from trame_bot.domain.plan import Step

PENDING, APPROVED, REJECTED = RunState.PENDING, RunState.APPROVED, RunState.REJECTED

# status -> (a manual run, a trigger-based run), with every trigger and connector healthy.
BY_STATUS = {
    Status.DRAFT: (PENDING, PENDING),
    Status.PILOT: (PENDING, PENDING),
    Status.LIVE: (APPROVED, APPROVED),
    Status.PAUSED: (PENDING, REJECTED),
}
TRIGGERS = {"nightly": True, "on-deal": False}
TRIGGER_STATES = {"enabled": "nightly", "disabled": "on-deal", "unknown": "weekly", "missing": None}
CONNECTOR_STATES: dict[str, Health | None] = {
    "ok": Health.OK,
    "needs_attention": Health.NEEDS_ATTENTION,
    "disconnected": Health.DISCONNECTED,
    "foreign": None,  # not a connector of this workspace
}


STEPS = [
    Step("read deals", "salesforce", "crm", Access.READ, "list_deals"),
    Step("post summary", "slack", "slack-ops", Access.WRITE, "post_message"),
]


def _connectors(crm: Health | None) -> dict[str, Health]:
    known = {"slack-ops": Health.OK}
    if crm is not None:
        known["crm"] = crm
    return known


SOURCES = [(Source.MANUAL, None), *((Source.TRIGGER, state) for state in TRIGGER_STATES)]


def _cases() -> list[Any]:
    """Every status × source × trigger state × connector health. Each refusal of DESIGN §1 adds
    one reason and rejects the run; without any, the status table decides."""
    cases = []
    for status, (source, trigger), (health_name, health) in product(
        BY_STATUS, SOURCES, CONNECTOR_STATES.items()
    ):
        refusals = [
            source is Source.TRIGGER and status is Status.PAUSED,
            trigger not in (None, "enabled"),
            health is not Health.OK,
        ]
        manual, by_trigger = BY_STATUS[status]
        wanted = manual if source is Source.MANUAL else by_trigger
        expected = REJECTED if any(refusals) else wanted
        label = f"{status}-{source}-{trigger or 'none'}-{health_name}"
        cases.append(
            pytest.param(status, source, trigger, health, expected, sum(refusals), id=label)
        )
    return cases


@pytest.mark.parametrize(
    ("status", "source", "trigger", "health", "expected", "refusals"), _cases()
)
def test_decide(
    status: Status,
    source: Source,
    trigger: str | None,
    health: Health | None,
    expected: RunState,
    refusals: int,
) -> None:
    decision = decide(
        status,
        source,
        None if trigger is None else TRIGGER_STATES[trigger],
        STEPS,
        triggers=TRIGGERS,
        connectors=_connectors(health),
    )
    assert decision.state is expected
    assert len(decision.reasons) == refusals
    assert (decision.reason is None) is (refusals == 0)


def test_every_reason_is_listed() -> None:
    steps = [
        Step("a", "salesforce", "crm", Access.READ),
        Step("b", "gmail", "mail", Access.WRITE),
        Step("c", "hubspot", "elsewhere", Access.READ),
        Step("d", "salesforce", "crm", Access.WRITE),  # a connector used twice is reported once
    ]
    decision = decide(
        Status.PAUSED,
        Source.TRIGGER,
        "on-deal",
        steps,
        triggers=TRIGGERS,
        connectors={"crm": Health.NEEDS_ATTENTION, "mail": Health.DISCONNECTED},
    )
    assert decision.state is REJECTED
    assert len(decision.reasons) == 5
    expected_words = [
        ["paused"],
        ["'on-deal'", "disabled"],
        ["'crm'", "needs attention"],
        ["'mail'", "disconnected"],
        ["'elsewhere'", "not a connector of this workspace"],
    ]
    for reason, words in zip(decision.reasons, expected_words, strict=True):
        for word in words:
            assert word in reason
    assert decision.reason == "; ".join(decision.reasons)


def test_a_step_writing_through_a_read_only_connector_is_refused() -> None:
    steps = [Step("a", "salesforce", "crm", Access.READ), Step("b", "sheets", "crm", Access.WRITE)]
    healthy = {"crm": Health.OK}
    refused = decide(
        Status.LIVE,
        Source.MANUAL,
        None,
        steps,
        triggers={},
        connectors=healthy,
        scopes={"crm": ["read"]},
    )
    assert refused.state is REJECTED
    assert len(refused.reasons) == 1
    assert refused.reasons[0].startswith("steps.1.access: ")
    granted = decide(
        Status.LIVE,
        Source.MANUAL,
        None,
        steps,
        triggers={},
        connectors=healthy,
        scopes={"crm": ["read", "write"]},
    )
    assert granted.state is not REJECTED


@pytest.mark.parametrize("status", list(Status))
def test_a_plan_without_steps_is_refused(status: Status) -> None:
    decision = decide(status, Source.MANUAL, None, [], triggers={}, connectors={})
    assert decision.state is REJECTED
    assert len(decision.reasons) == 1

"""The run gate: may a requested run go now, must it wait for people, or is it refused?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trame_bot.domain.enums import Health, RunState, Source, Status
from trame_bot.domain.plan import Step, connectors_of
from trame_bot.domain.scopes import write_refusals

NEEDS_APPROVAL = {Status.DRAFT, Status.PILOT, Status.PAUSED}


@dataclass(frozen=True)
class GateDecision:
    state: RunState
    """APPROVED (go now), PENDING (wait for reviewers) or REJECTED."""
    reasons: tuple[str, ...] = ()

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) or None


def decide(
    status: Status,
    source: Source,
    trigger: str | None,
    steps: Sequence[Step],
    *,
    triggers: Mapping[str, bool],
    connectors: Mapping[str, Health],
    scopes: Mapping[str, Sequence[str]] | None = None,
) -> GateDecision:
    """`triggers` maps the workflow's trigger keys to enabled; `connectors` maps the keys of the
    workspace's own connectors to their health, and `scopes` to what they are granted: a step
    that writes through a connector granted only read is refused, as when a workflow is saved
    (a run may bring steps of its own). Every refusal reason is listed, not just one, so the
    engine can fix them all at once.
    """
    reasons: list[str] = []
    if source is Source.TRIGGER:
        if status is Status.PAUSED:
            reasons.append(
                "the workflow is paused: trigger-based runs are refused until it resumes"
            )
        if not trigger:
            reasons.append("a trigger-based run must name its trigger")
        elif trigger not in triggers:
            reasons.append(f"the workflow has no trigger {trigger!r}")
        elif not triggers[trigger]:
            reasons.append(f"trigger {trigger!r} is disabled")
    if not steps:
        reasons.append("the plan has no steps")
    for key in connectors_of(steps):
        health = connectors.get(key)
        if health is None:
            reasons.append(f"connector {key!r} is not a connector of this workspace")
        elif health is not Health.OK:
            state = "needs attention" if health is Health.NEEDS_ATTENTION else "is disconnected"
            reasons.append(
                f"connector {key!r} {state}: running would risk a partial run; "
                "reconnect it in Trame → Settings → Connectors"
            )
    refused = write_refusals([(s.connector, s.access) for s in steps], scopes or {})
    reasons.extend(f"{where}: {why}" for where, why in refused.items())
    if reasons:
        return GateDecision(RunState.REJECTED, tuple(reasons))
    if status in NEEDS_APPROVAL:
        return GateDecision(RunState.PENDING)
    return GateDecision(RunState.APPROVED)

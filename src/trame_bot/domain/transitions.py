"""Workflow status transitions and who may make them (docs/governance.md)."""

from __future__ import annotations

from dataclasses import dataclass

from trame_bot.domain.enums import Role, Status
from trame_bot.errors import Forbidden, InvalidInput, InvalidTransition

# (from, to) -> the lowest role allowed to make the change. Absent pairs are never allowed.
# Resuming from paused is listed for every target, but only the status it had is accepted.
TRANSITIONS: dict[tuple[Status, Status], Role] = {
    (Status.DRAFT, Status.PILOT): Role.MEMBER,
    (Status.PILOT, Status.DRAFT): Role.MEMBER,
    (Status.PILOT, Status.LIVE): Role.ADMIN,
    (Status.LIVE, Status.PILOT): Role.ADMIN,
    (Status.DRAFT, Status.PAUSED): Role.MEMBER,
    (Status.PILOT, Status.PAUSED): Role.MEMBER,
    (Status.LIVE, Status.PAUSED): Role.MEMBER,
    (Status.PAUSED, Status.DRAFT): Role.ADMIN,
    (Status.PAUSED, Status.PILOT): Role.ADMIN,
    (Status.PAUSED, Status.LIVE): Role.ADMIN,
}


@dataclass(frozen=True)
class GoLiveEvidence:
    """What promoting a workflow to live must show."""

    signed_off_by: str | None
    sign_off_evidence: str | None
    rollback_plan: str | None
    production: bool
    approved_pilot_runs_of_current_plan: int


def check_status_change(
    current: Status,
    target: Status,
    role: Role,
    *,
    status_before_pause: Status | None = None,
    reason: str | None = None,
    go_live: GoLiveEvidence | None = None,
) -> None:
    """Raise the error that explains why the change may not happen; return when it may."""
    if current == target:
        raise InvalidTransition(f"the workflow is already {current}")
    if current is Status.DRAFT and target is Status.LIVE:
        raise InvalidTransition("a draft cannot go live directly: promote it to pilot first")
    needed = TRANSITIONS.get((current, target))
    if needed is None:
        allowed = ", ".join(sorted(t for (f, t) in TRANSITIONS if f is current))
        raise InvalidTransition(f"a {current} workflow can only move to: {allowed}")
    if current is Status.PAUSED and target is not (status_before_pause or Status.DRAFT):
        raise InvalidTransition(
            f"a paused workflow resumes to the status it had ({status_before_pause or 'draft'})"
        )
    if not role.at_least(needed):
        raise Forbidden(f"moving a workflow from {current} to {target} needs the {needed} role")
    if target is Status.PAUSED and not (reason and reason.strip()):
        raise InvalidInput("pausing needs a reason", {"reason": "say why the workflow is paused"})
    if target is Status.LIVE and current is Status.PILOT:
        _check_go_live(go_live)


def _check_go_live(evidence: GoLiveEvidence | None) -> None:
    missing = {}
    if evidence is None or not (evidence.signed_off_by or "").strip():
        missing["signed_off_by"] = "who at the client signed off"
    if evidence is None or not (evidence.sign_off_evidence or "").strip():
        missing["sign_off_evidence"] = "where the sign-off is recorded"
    if evidence is None or not (evidence.rollback_plan or "").strip():
        missing["rollback_plan"] = "how to roll back if the live run goes wrong"
    if missing:
        raise InvalidInput("going live needs a client sign-off and a rollback plan", missing)
    assert evidence is not None
    if evidence.production and evidence.approved_pilot_runs_of_current_plan < 1:
        raise InvalidTransition(
            "a production workflow needs at least one approved pilot run of its current plan "
            "before it goes live"
        )

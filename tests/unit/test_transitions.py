"""Status transitions and who may make them, restated from docs/governance.md (not from TRANSITIONS)."""

from __future__ import annotations

import pytest

from trame_bot.domain.enums import Role, Status
from trame_bot.domain.transitions import GoLiveEvidence, check_status_change
from trame_bot.errors import Forbidden, InvalidInput, InvalidTransition

DRAFT, PILOT, LIVE, PAUSED = Status.DRAFT, Status.PILOT, Status.LIVE, Status.PAUSED
OK = None
NO = InvalidTransition  # nobody may make this change
FORBIDDEN = Forbidden  # the change exists, but not for this role

SIGNED_OFF = GoLiveEvidence(
    signed_off_by="Jane Client",
    sign_off_evidence="https://docs.example/signoff",
    rollback_plan="disable the trigger and re-run the old export",
    production=False,
    approved_pilot_runs_of_current_plan=0,
)

# Every (from, to) pair; paused rows resume to the status the workflow had before the pause.
RULES: list[tuple[Status, Status, object, object, object]] = [
    # from   to       member     admin  owner
    (DRAFT, DRAFT, NO, NO, NO),
    (DRAFT, PILOT, OK, OK, OK),
    (DRAFT, LIVE, NO, NO, NO),  # must pass through pilot
    (DRAFT, PAUSED, OK, OK, OK),  # anyone may pull the brake
    (PILOT, DRAFT, OK, OK, OK),
    (PILOT, PILOT, NO, NO, NO),
    (PILOT, LIVE, FORBIDDEN, OK, OK),
    (PILOT, PAUSED, OK, OK, OK),
    (LIVE, DRAFT, NO, NO, NO),  # not in the table: demote to pilot first
    (LIVE, PILOT, FORBIDDEN, OK, OK),
    (LIVE, LIVE, NO, NO, NO),
    (LIVE, PAUSED, OK, OK, OK),
    (PAUSED, DRAFT, FORBIDDEN, OK, OK),
    (PAUSED, PILOT, FORBIDDEN, OK, OK),
    (PAUSED, LIVE, FORBIDDEN, OK, OK),
    (PAUSED, PAUSED, NO, NO, NO),
]
CASES = [
    pytest.param(current, target, role, expected, id=f"{current}->{target}-{role}")
    for current, target, *by_role in RULES
    for role, expected in zip((Role.MEMBER, Role.ADMIN, Role.OWNER), by_role, strict=True)
]


def test_the_table_covers_every_pair_once() -> None:
    assert sorted((f, t) for f, t, *_ in RULES) == sorted((f, t) for f in Status for t in Status)


@pytest.mark.parametrize(("current", "target", "role", "expected"), CASES)
def test_who_may_change_status(
    current: Status, target: Status, role: Role, expected: type[Exception] | None
) -> None:
    def change() -> None:
        check_status_change(
            current,
            target,
            role,
            status_before_pause=target if current is PAUSED else None,
            reason="client asked to stop",
            go_live=SIGNED_OFF,
        )

    if expected is None:
        change()
    else:
        with pytest.raises(expected):
            change()


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OWNER])
@pytest.mark.parametrize(
    ("before", "target"),
    [(b, t) for b in (DRAFT, PILOT, LIVE) for t in (DRAFT, PILOT, LIVE) if b != t],
)
def test_paused_resumes_only_to_the_status_it_had(
    role: Role, before: Status, target: Status
) -> None:
    with pytest.raises(InvalidTransition):
        check_status_change(PAUSED, target, role, status_before_pause=before, go_live=SIGNED_OFF)


def test_resuming_to_live_needs_no_new_sign_off() -> None:
    check_status_change(PAUSED, LIVE, Role.ADMIN, status_before_pause=LIVE, go_live=None)


def test_demoting_needs_no_sign_off() -> None:
    check_status_change(LIVE, PILOT, Role.ADMIN, go_live=None)


@pytest.mark.parametrize("current", [DRAFT, PILOT, LIVE])
@pytest.mark.parametrize("reason", [None, "", "   \n"])
def test_pausing_needs_a_reason(current: Status, reason: str | None) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_status_change(current, PAUSED, Role.OWNER, reason=reason)
    assert set(caught.value.fields) == {"reason"}


def _evidence(
    signed_off_by: str | None = "Jane Client",
    sign_off_evidence: str | None = "email of 2026-11-01",
    rollback_plan: str | None = "disable the trigger",
    *,
    production: bool = False,
    pilot_runs: int = 0,
) -> GoLiveEvidence:
    return GoLiveEvidence(signed_off_by, sign_off_evidence, rollback_plan, production, pilot_runs)


@pytest.mark.parametrize(
    ("evidence", "missing"),
    [
        (None, {"signed_off_by", "sign_off_evidence", "rollback_plan"}),
        (_evidence(None, None, None), {"signed_off_by", "sign_off_evidence", "rollback_plan"}),
        (_evidence(signed_off_by=None), {"signed_off_by"}),
        (_evidence(signed_off_by="  "), {"signed_off_by"}),
        (_evidence(sign_off_evidence=""), {"sign_off_evidence"}),
        (_evidence(rollback_plan=" \t"), {"rollback_plan"}),
        (
            _evidence(sign_off_evidence=None, rollback_plan=None),
            {"sign_off_evidence", "rollback_plan"},
        ),
    ],
)
@pytest.mark.parametrize("role", [Role.ADMIN, Role.OWNER])
def test_going_live_names_the_missing_sign_off_fields(
    evidence: GoLiveEvidence | None, missing: set[str], role: Role
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_status_change(PILOT, LIVE, role, go_live=evidence)
    assert set(caught.value.fields) == missing


@pytest.mark.parametrize(
    ("production", "pilot_runs", "allowed"),
    [
        (False, 0, True),
        (False, 3, True),
        (True, 0, False),
        (True, 1, True),
        (True, 2, True),
    ],
)
def test_production_goes_live_after_an_approved_pilot_run_of_its_plan(
    production: bool, pilot_runs: int, allowed: bool
) -> None:
    evidence = _evidence(production=production, pilot_runs=pilot_runs)
    if allowed:
        check_status_change(PILOT, LIVE, Role.ADMIN, go_live=evidence)
    else:
        with pytest.raises(InvalidTransition):
            check_status_change(PILOT, LIVE, Role.ADMIN, go_live=evidence)

"""Who reviews a run, reasons, quorum and veto, expiry and the reminder (docs/governance.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trame_bot.domain.approvals import (
    MAX_REASON,
    check_reviewer,
    clean_reason,
    expiry,
    outcome_after,
    reminder_due,
)
from trame_bot.domain.enums import RunState, Verdict
from trame_bot.errors import Forbidden, InvalidInput

APPROVE, DECLINE = Verdict.APPROVE, Verdict.DECLINE
REQUESTER = "U_REQ"


@pytest.mark.parametrize(
    ("user", "verdict", "named", "is_member", "allow_self", "allowed"),
    [
        # named reviewers are the only reviewers, members or not
        ("U_CLIENT", APPROVE, ["U_CLIENT"], False, False, True),
        ("U_OTHER", APPROVE, ["U_CLIENT"], True, False, False),
        ("U_OTHER", DECLINE, ["U_CLIENT"], True, False, False),
        # without named reviewers, every member reviews and nobody else
        ("U_OTHER", APPROVE, [], True, False, True),
        ("U_OTHER", DECLINE, [], True, False, True),
        ("U_STRANGER", APPROVE, [], False, False, False),
        ("U_STRANGER", DECLINE, [], False, False, False),
        # the requester approves their own run only when the workspace allows it
        (REQUESTER, APPROVE, [], True, False, False),
        (REQUESTER, APPROVE, [], True, True, True),
        (REQUESTER, APPROVE, [REQUESTER], False, False, False),
        (REQUESTER, APPROVE, [REQUESTER], False, True, True),
        # but may always decline (withdraw) it
        (REQUESTER, DECLINE, [], True, False, True),
        (REQUESTER, DECLINE, [REQUESTER], False, False, True),
    ],
)
def test_check_reviewer(
    user: str, verdict: Verdict, named: list[str], is_member: bool, allow_self: bool, allowed: bool
) -> None:
    def check() -> None:
        check_reviewer(
            user,
            verdict,
            requester=REQUESTER,
            named_reviewers=named,
            is_member=is_member,
            allow_self_approval=allow_self,
        )

    if allowed:
        check()
    else:
        with pytest.raises(Forbidden):
            check()


def test_a_run_without_a_slack_requester_can_be_approved_by_any_member() -> None:
    check_reviewer(
        "U_OTHER",
        APPROVE,
        requester=None,
        named_reviewers=[],
        is_member=True,
        allow_self_approval=False,
    )


@pytest.mark.parametrize(
    ("verdict", "reason", "expected"),
    [
        (DECLINE, " wrong recipient \n", "wrong recipient"),
        (APPROVE, " looks right ", "looks right"),
        (APPROVE, None, None),
        (APPROVE, "", None),
        (APPROVE, "   ", None),
        (DECLINE, "x" * MAX_REASON, "x" * MAX_REASON),
    ],
)
def test_clean_reason(verdict: Verdict, reason: str | None, expected: str | None) -> None:
    assert clean_reason(verdict, reason) == expected


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [
        (DECLINE, None),
        (DECLINE, ""),
        (DECLINE, " \t\n"),
        (DECLINE, "x" * (MAX_REASON + 1)),
        (APPROVE, "x" * (MAX_REASON + 1)),
    ],
)
def test_clean_reason_refuses(verdict: Verdict, reason: str | None) -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_reason(verdict, reason)
    assert set(caught.value.fields) == {"reason"}


@pytest.mark.parametrize(
    ("verdict", "approvals", "required", "expected"),
    [
        (APPROVE, 1, 1, RunState.APPROVED),
        (APPROVE, 1, 2, RunState.PENDING),
        (APPROVE, 2, 2, RunState.APPROVED),
        (APPROVE, 2, 3, RunState.PENDING),
        (APPROVE, 3, 3, RunState.APPROVED),
        (DECLINE, 0, 1, RunState.DECLINED),
        (DECLINE, 1, 2, RunState.DECLINED),  # one decline vetoes earlier approvals
        (DECLINE, 2, 3, RunState.DECLINED),
    ],
)
def test_outcome_after(verdict: Verdict, approvals: int, required: int, expected: RunState) -> None:
    assert outcome_after(verdict, approvals, required) is expected


REQUESTED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [
        (timedelta(hours=24), datetime(2026, 11, 3, 9, 0, tzinfo=UTC)),
        (timedelta(minutes=30), datetime(2026, 11, 2, 9, 30, tzinfo=UTC)),
    ],
)
def test_expiry(ttl: timedelta, expected: datetime) -> None:
    assert expiry(REQUESTED, ttl) == expected


@pytest.mark.parametrize(
    ("after", "reminded", "due"),
    [
        (timedelta(hours=3, minutes=59), False, False),
        (timedelta(hours=4), False, True),
        (timedelta(hours=5), False, True),
        (timedelta(hours=5), True, False),  # reminded once only
    ],
)
def test_reminder_due(after: timedelta, reminded: bool, due: bool) -> None:
    now = REQUESTED + after
    assert reminder_due(REQUESTED, timedelta(hours=4), now, reminded=reminded) is due

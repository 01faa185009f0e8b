"""Connector health after a report, and which changes raise an alert."""

from __future__ import annotations

import pytest

from trame_bot.domain.enums import Health
from trame_bot.domain.health import Report, after_report, is_alert_transition

OK, ATTENTION, GONE = Health.OK, Health.NEEDS_ATTENTION, Health.DISCONNECTED


@pytest.mark.parametrize(
    ("current", "report", "expected"),
    [
        (OK, Report.OK, OK),
        (ATTENTION, Report.OK, OK),
        (GONE, Report.OK, OK),
        (OK, Report.ERROR, ATTENTION),
        (ATTENTION, Report.ERROR, ATTENTION),
        (GONE, Report.ERROR, GONE),  # an error does not make a disconnected connector better
        (OK, Report.DISCONNECTED, GONE),
        (ATTENTION, Report.DISCONNECTED, GONE),
        (GONE, Report.DISCONNECTED, GONE),
    ],
)
def test_after_report(current: Health, report: Report, expected: Health) -> None:
    assert after_report(current, report) is expected


@pytest.mark.parametrize(
    ("before", "after", "alert"),
    [
        (OK, OK, False),
        (OK, ATTENTION, True),
        (OK, GONE, True),
        (ATTENTION, OK, True),
        (GONE, OK, True),
        (ATTENTION, ATTENTION, False),
        (ATTENTION, GONE, False),
        (GONE, ATTENTION, False),
        (GONE, GONE, False),
    ],
)
def test_is_alert_transition(before: Health, after: Health, alert: bool) -> None:
    assert is_alert_transition(before, after) is alert

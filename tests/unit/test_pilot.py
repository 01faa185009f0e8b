"""The pilot's record and the go-live warnings, as tables over audit events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trame_bot.domain.enums import Health
from trame_bot.domain.pilot import Event, go_live_warnings, pilot_record, version_saved_at

T0 = datetime(2026, 11, 2, tzinfo=UTC)
_seq = iter(range(1, 10_000))


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def event(hours: float, action: str, entity: str, reason: str | None = None, **data: Any) -> Event:
    kind, _, ident = entity.partition(":")
    return Event(next(_seq), at(hours), "slack:U0ADMIN", action, kind, ident, data, reason)


def test_the_version_counts_from_its_first_save() -> None:
    events = [
        event(0, "workflow.created", "workflow:w", version=1),
        event(1, "workflow.changed", "workflow:w", version=2),
        event(2, "workflow.changed", "workflow:w", version=2),  # a rename: same plan
        event(3, "workflow.changed", "workflow:w", version=3),
    ]
    assert [version_saved_at(events, v) for v in (1, 2, 3, 4)] == [at(0), at(1), at(3), None]


def test_each_run_counts_once_by_its_last_outcome() -> None:
    events = [
        event(0, "workflow.created", "workflow:w", version=1),
        event(1, "run.requested", "run:a", state="pending"),
        event(2, "run.approval_recorded", "run:a", state="pending"),
        event(3, "run.approved", "run:a"),
        event(1, "run.requested", "run:b", state="pending"),
        event(2, "run.declined", "run:b", "wrong totals", category="wrong_data"),
        event(1, "run.requested", "run:c", state="pending"),
        event(2, "run.expired", "run:c"),
        event(1, "run.requested", "run:d", state="pending"),
        event(1, "run.requested", "run:e", state="rejected"),
        event(1, "run.requested", "run:f", state="pending"),
        event(2, "run.cancelled", "run:f"),
    ]
    record = pilot_record(events, version=1, connectors=(), saved_fallback=at(-9), now=at(5))
    assert (record.approved, record.expired, record.pending) == (1, 1, 1)
    assert (record.cancelled, record.refused, record.since) == (1, 1, at(0))
    (decline,) = record.declined
    assert (decline.run_id, decline.category, decline.reason) == ("b", "wrong_data", "wrong totals")


def test_connector_health_over_the_pilot() -> None:
    events = [
        event(-5, "connector.health_changed", "connector:crm", after="needs_attention"),
        event(0, "workflow.created", "workflow:w", version=1),
        event(2, "connector.health_changed", "connector:crm", after="ok"),
        event(4, "connector.health_changed", "connector:crm", after="disconnected"),
        event(1, "connector.health_changed", "connector:sheets", after="needs_attention"),
        event(1.5, "connector.health_changed", "connector:sheets", after="ok"),
    ]
    record = pilot_record(
        events, version=1, connectors=("crm", "sheets", "mail"), saved_fallback=T0, now=at(5)
    )
    crm, sheets, mail = record.connectors
    assert (crm.health, crm.unhealthy_for, len(crm.unhealthy)) == (
        Health.DISCONNECTED,
        timedelta(hours=3),
        2,
    )
    assert crm.unhealthy[0].open_at_start
    assert crm.unhealthy[1].open_at_end
    assert (sheets.health, sheets.unhealthy_for) == (Health.OK, timedelta(minutes=30))
    assert (mail.health, mail.unhealthy) == (Health.OK, ())


def test_the_record_falls_back_to_the_given_save_time() -> None:
    record = pilot_record([], version=7, connectors=(), saved_fallback=at(1), now=at(2))
    assert (record.since, record.approved, record.declined) == (at(1), 0, ())


# (approved, decline ages in days, minimum) → (recent declines, too few approved)
WARNINGS: list[tuple[int, list[float], int, int, bool]] = [
    (2, [], 1, 0, False),
    (1, [], 1, 0, False),
    (0, [], 1, 0, True),
    (3, [], 5, 0, True),
    (0, [], 0, 0, False),
    (2, [1], 1, 1, False),
    (2, [6.9], 1, 1, False),
    (2, [7.1], 1, 0, False),
    (2, [0.5, 3, 10], 1, 2, False),
]


@pytest.mark.parametrize(("approved", "ages", "minimum", "recent", "too_few"), WARNINGS)
def test_go_live_warnings(
    approved: int, ages: list[float], minimum: int, recent: int, too_few: bool
) -> None:
    now = at(24 * 30)
    events = [event(0, "workflow.created", "workflow:w", version=1)]
    for n in range(approved):
        events += [
            event(1, "run.requested", f"run:ok{n}", state="pending"),
            event(2, "run.approved", f"run:ok{n}"),
        ]
    for n, age in enumerate(ages):
        events += [
            event(1, "run.requested", f"run:no{n}", state="pending"),
            event(24 * 30 - 24 * age, "run.declined", f"run:no{n}", "no"),
        ]
    record = pilot_record(events, version=1, connectors=(), saved_fallback=T0, now=now)
    warnings = go_live_warnings(record, minimum_approved=minimum, now=now)
    assert (len(warnings.recent_declines), warnings.too_few_approved) == (recent, too_few)
    assert bool(warnings) == (recent > 0 or too_few)
    if recent:
        assert warnings.recent_declines[0].at == max(d.at for d in warnings.recent_declines)

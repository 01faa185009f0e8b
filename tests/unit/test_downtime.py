"""Paused and unhealthy stretches within a window, as tables: open at either end, repeated
bad states, changes outside the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trame_bot.domain.downtime import Change, bad_spans, spoken, total


def t(hour: float) -> datetime:
    return datetime(2026, 11, 2, tzinfo=UTC) + timedelta(hours=hour)


SINCE, UNTIL = t(10), t(20)

# changes as (hour, bad) → spans as (start, end, open_at_start, open_at_end), total hours
CASES: list[tuple[str, list[tuple[float, bool]], list[tuple[float, float, bool, bool]], float]] = [
    ("no change: good all along", [], [], 0),
    ("paused and resumed inside", [(12, True), (14, False)], [(12, 14, False, False)], 2),
    (
        "paused before the window, resumed inside",
        [(8, True), (11, False)],
        [(10, 11, True, False)],
        1,
    ),
    ("paused inside, still paused at the end", [(18, True)], [(18, 20, False, True)], 2),
    ("paused before, still paused after", [(5, True)], [(10, 20, True, True)], 10),
    ("resumed before the window", [(5, True), (9, False)], [], 0),
    ("resumed exactly at the window's start", [(5, True), (10, False)], [], 0),
    ("paused exactly at the window's end", [(20, True)], [], 0),
    ("resumed after the window", [(15, True), (22, False)], [(15, 20, False, True)], 5),
    (
        "two outages",
        [(11, True), (12, False), (16, True), (16.5, False)],
        [(11, 12, False, False), (16, 16.5, False, False)],
        1.5,
    ),
    (
        "needs attention then disconnected is one stretch",
        [(11, True), (13, True), (15, False)],
        [(11, 15, False, False)],
        4,
    ),
    (
        "a good report while good changes nothing",
        [(11, False), (12, True), (13, False)],
        [(12, 13, False, False)],
        1,
    ),
    ("changes after the window are ignored", [(21, True), (22, False)], [], 0),
]


@pytest.mark.parametrize(("name", "changes", "expected", "hours"), CASES, ids=[c[0] for c in CASES])
def test_bad_spans(
    name: str,
    changes: list[tuple[float, bool]],
    expected: list[tuple[float, float, bool, bool]],
    hours: float,
) -> None:
    spans = bad_spans([Change(t(h), bad) for h, bad in changes], since=SINCE, until=UNTIL)
    assert [(s.start, s.end, s.open_at_start, s.open_at_end) for s in spans] == [
        (t(a), t(b), open_start, open_end) for a, b, open_start, open_end in expected
    ]
    assert total(spans) == timedelta(hours=hours)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (40, "40 s"),
        (720, "12 min"),
        (3 * 3600 + 300, "3 h 05 min"),
        (2 * 86400, "2 d"),
        (2 * 86400 + 3 * 3600 + 59, "2 d 3 h"),
    ],
)
def test_spoken_durations(seconds: int, text: str) -> None:
    assert spoken(timedelta(seconds=seconds)) == text

"""Parsing and checking the small values people type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trame_bot.domain.values import (
    check_channel,
    check_digest_time,
    check_key,
    check_timezone,
    counted,
    format_duration,
    parse_duration,
    parse_moment,
)
from trame_bot.errors import InvalidInput


@pytest.mark.parametrize("value", ["acme", "a", "0day", "client-1", "ops_team", "a" * 64])
def test_check_key_accepts(value: str) -> None:
    assert check_key(value) == value


@pytest.mark.parametrize(
    "value", ["", "Acme", "-acme", "_acme", "a b", "a.b", "a/b", "café", "a" * 65, "acme\n"]
)
def test_check_key_refuses(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_key(value, "workspace")
    assert set(caught.value.fields) == {"workspace"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        (" 4H ", timedelta(hours=4)),
        ("4 h", timedelta(hours=4)),
    ],
)
def test_parse_duration(value: str, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    "value", ["", "h", "4", "0h", "-1h", "1.5h", "4y", "4 hours", "4h30m", "h4"]
)
def test_parse_duration_refuses(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_duration(value, "approval_ttl")
    assert set(caught.value.fields) == {"approval_ttl"}


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (1, "1s"),
        (90, "90s"),
        (60, "1m"),
        (5400, "90m"),
        (3600, "1h"),
        (90000, "25h"),
        (86400, "1d"),
        (172800, "2d"),
        (604800, "1w"),
        (1209600, "2w"),
    ],
)
def test_format_duration_round_trips(seconds: int, expected: str) -> None:
    assert format_duration(seconds) == expected
    assert parse_duration(expected) == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["Europe/Paris", "America/New_York", "UTC"])
def test_check_timezone_accepts(value: str) -> None:
    assert check_timezone(value) == value


@pytest.mark.parametrize("value", ["", "Paris", "Mars/Olympus", "../etc/passwd", "+02:00"])
def test_check_timezone_refuses(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_timezone(value)
    assert set(caught.value.fields) == {"timezone"}


@pytest.mark.parametrize("value", ["00:00", "09:30", "19:05", "23:59"])
def test_check_digest_time_accepts(value: str) -> None:
    assert check_digest_time(value) == value


@pytest.mark.parametrize(
    "value", ["", "9:30", "0930", "24:00", "12:60", "09:30:00", " 09:30", "9h30", "09:30\n"]
)
def test_check_digest_time_refuses(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_digest_time(value)
    assert set(caught.value.fields) == {"digest_time"}


@pytest.mark.parametrize("value", ["C0123ABCD", "G0123ABCD", "D0123ABCD", "C12", "C" + "A" * 31])
def test_check_channel_accepts(value: str) -> None:
    assert check_channel(value) == value


@pytest.mark.parametrize(
    "value",
    ["", "C1", "c0123abcd", "#general", "general", "U0123ABCD", "C" + "A" * 32, "C0123ABCD\n"],
)
def test_check_channel_refuses(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_channel(value, "ops_channel")
    assert set(caught.value.fields) == {"ops_channel"}


NOW = datetime(2026, 11, 8, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7d", datetime(2026, 11, 1, 12, 0, tzinfo=UTC)),
        (" 2h ", datetime(2026, 11, 8, 10, 0, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T09:30", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("2026-11-01T09:30Z", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("2026-11-01T09:30:00+02:00", datetime(2026, 11, 1, 7, 30, tzinfo=UTC)),
    ],
)
def test_parse_moment(value: str, expected: datetime) -> None:
    moment = parse_moment(value, NOW)
    assert moment == expected
    assert moment.tzinfo is not None


def test_parse_moment_honours_the_offset_and_answers_in_utc() -> None:
    moment = parse_moment("2026-11-01T09:30+02:00", NOW)
    assert moment == datetime(2026, 11, 1, 7, 30, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "740000d", "99999999999d"]
)
def test_parse_moment_refuses_times_outside_the_calendar(value: str) -> None:
    with pytest.raises(InvalidInput):
        parse_moment(value, NOW)


@pytest.mark.parametrize("value", ["", "yesterday", "0d", "2026-13-01", "01/11/2026"])
def test_parse_moment_refuses(value: str) -> None:
    with pytest.raises(InvalidInput):
        parse_moment(value, NOW)


@pytest.mark.parametrize(
    ("count", "expected"), [(0, "0 events"), (1, "1 event"), (2, "2 events"), (-1, "-1 events")]
)
def test_counted_is_singular_for_one_only(count: int, expected: str) -> None:
    assert counted(count, "event") == expected


def test_counted_takes_an_irregular_plural() -> None:
    assert counted(1, "entry", "entries") == "1 entry"
    assert counted(3, "entry", "entries") == "3 entries"

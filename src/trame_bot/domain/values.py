"""Parsing and checking the small values people type: keys, durations, times, zones."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trame_bot.errors import InvalidInput

_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw])\s*", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_CHANNEL = re.compile(r"[CGD][A-Z0-9]{2,31}")
_USER = re.compile(r"[UW][A-Z0-9]{2,31}")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters, tabs and newlines aside."""


def storable(text: str) -> bool:
    """Free of control characters and valid UTF-8: PostgreSQL cannot store (or even compare)
    a NUL, the audit chain cannot hash a lone surrogate, and no key, id or name needs either."""
    if CONTROL.search(text):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_key(value: str, what: str = "key") -> str:
    if not _KEY.fullmatch(value):
        raise InvalidInput(
            f"{what} {value!r} must be 1–64 lowercase letters, digits, '-' or '_'",
            {what: "lowercase letters, digits, '-' or '_'"},
        )
    return value


MAX_DURATION = timedelta(days=3660)
"""Ten years: more is a typo, and far past it Python's dates overflow."""


def parse_duration(value: str, what: str = "duration") -> timedelta:
    """`90s`, `30m`, `24h`, `2d`, `1w`; at most ten years."""
    match = _DURATION.fullmatch(value)
    if match and len(match.group(1)) <= 9:
        seconds = int(match.group(1)) * _UNITS[match.group(2).lower()]
        if 0 < seconds <= MAX_DURATION.total_seconds():
            return timedelta(seconds=seconds)
    if not match or int(match.group(1)) == 0:
        raise InvalidInput(
            f"{what} {value!r} is not a duration like 30m, 4h or 2d", {what: "like 4h"}
        )
    raise InvalidInput(f"{what} {value!r} is longer than ten years", {what: "at most ten years"})


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """ "1 event", "2 events", "0 events": a count with its noun, singular only for one."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def format_duration(seconds: int) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {value!r}: use an IANA name like Europe/Paris",
            {"timezone": "IANA name"},
        ) from None
    return value


def check_digest_time(value: str) -> str:
    if not _HHMM.fullmatch(value):
        raise InvalidInput(
            f"digest time {value!r} must be HH:MM (24-hour)", {"digest_time": "HH:MM"}
        )
    return value


def check_channel(value: str, what: str = "channel") -> str:
    if not _CHANNEL.fullmatch(value):
        raise InvalidInput(
            f"{what} {value!r} is not a Slack channel id (like C0123ABCD)", {what: "a channel id"}
        )
    return value


def check_user(value: str, what: str = "user") -> str:
    if not _USER.fullmatch(value):
        raise InvalidInput(
            f"{value!r} is not a Slack user id (like U0123ABCD): mention the person, e.g. @jane",
            {what: "a Slack user id"},
        )
    return value


def parse_moment(value: str, now: datetime) -> datetime:
    """An ISO date or datetime (UTC unless it says otherwise), or an age like `7d` (now − 7 days)."""
    text = value.strip()
    if _DURATION.fullmatch(text):
        return now - parse_duration(text)  # at most ten years back: no overflow
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)  # a time at the ends of the calendar overflows here
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"{value!r} is not a time: use 2026-11-01, 2026-11-01T09:30 or an age like 7d"
        ) from None


def match_workflow(
    words: tuple[str, ...], workflows: list[tuple[str, str]]
) -> tuple[str, tuple[str, ...]] | None:
    """The workflow the leading words name, by key or name (any case), longest name first,
    and the words left after it. `workflows` is (key, name) pairs."""
    lowered = [w.lower() for w in words]
    for size in range(len(words), 0, -1):
        candidate = " ".join(lowered[:size])
        for key, name in workflows:
            if candidate in (key.lower(), name.lower()):
                return key, words[size:]
    return None

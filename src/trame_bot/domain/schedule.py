"""When the daily digest is due, in a workspace's own time zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def digest_due(now: datetime, timezone: str, digest_time: str) -> tuple[date, datetime]:
    """The local date and UTC moment of the latest digest whose time has come (today's once its
    local time has passed, yesterday's before that). A digest is sent when no digest of that date exists yet,
    so a missed one goes out late once, and never twice.

    A local time that does not exist on a DST change (02:30 when clocks jump from 02:00 to
    03:00) counts as the same wall time on the earlier offset, one hour later in real time;
    a local time that happens twice counts at its first occurrence.
    """
    zone = ZoneInfo(timezone)
    hour, minute = (int(part) for part in digest_time.split(":"))
    today = now.astimezone(zone).date()
    for day in (today, today - timedelta(days=1)):
        scheduled = datetime.combine(day, time(hour, minute), tzinfo=zone)
        moment = scheduled.astimezone(UTC)
        if moment <= now:
            return day, moment
    raise AssertionError("yesterday's digest time has always passed")

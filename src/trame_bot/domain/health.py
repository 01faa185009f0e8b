"""Connector health: one rule for the engine's reports and the scheduled sweep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from trame_bot.domain.enums import Health


class Report(StrEnum):
    """What a health report or probe says about a connector."""

    OK = "ok"
    ERROR = "error"
    DISCONNECTED = "disconnected"


def after_report(current: Health, report: Report) -> Health:
    """An error is "needs attention" unless the connector is already known disconnected."""
    if report is Report.OK:
        return Health.OK
    if report is Report.DISCONNECTED or current is Health.DISCONNECTED:
        return Health.DISCONNECTED
    return Health.NEEDS_ATTENTION


def is_alert_transition(before: Health, after: Health) -> bool:
    """Alert when a connector starts needing attention and when it recovers; not in between."""
    return (before is Health.OK) != (after is Health.OK)


@dataclass(frozen=True)
class Finding:
    """What the sweep concluded about a connector: a report, and why."""

    report: Report
    error: str | None = None


def assess(
    now: datetime,
    *,
    probe: Finding | None,
    expires_at: datetime | None,
    last_seen: datetime | None,
    expiry_window: timedelta,
    stale_after: timedelta,
) -> Finding | None:
    """The sweep's verdict, or None when it has no evidence either way (then the engine's last
    report stands). `probe` is the health URL's answer, None when the connector has no URL;
    `last_seen` is its newest report or probe."""
    if expires_at is not None and expires_at <= now:
        return Finding(
            Report.DISCONNECTED, f"credentials expired {_when(expires_at)}: reconnect it"
        )
    if expires_at is not None and expires_at <= now + expiry_window:
        return Finding(
            Report.ERROR, f"credentials expire {_when(expires_at)}: renew them before then"
        )
    if probe is not None:
        return probe
    if last_seen is None or now - last_seen > stale_after:
        since = f"since {_when(last_seen)}" if last_seen else "ever"
        return Finding(
            Report.ERROR, f"no health report {since}: check that the engine still reports it"
        )
    return None


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")

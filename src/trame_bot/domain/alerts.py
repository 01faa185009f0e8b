"""What a connector alert shows: the alert, who acted from it, and what its button would do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AlertWorkflow:
    key: str
    name: str
    status: str


@dataclass(frozen=True)
class AlertView:
    alert_id: int
    event: str
    """`connector.needs_attention` or `connector.recovered`."""
    connector: str
    data: dict[str, Any]
    """The alert as raised: health, error, and the workflows using the connector then."""
    acted_by: str | None = None
    acted_at: datetime | None = None
    acted_on: tuple[AlertWorkflow, ...] = ()
    """Paused from an outage alert, or resumed from a recovery notice."""
    to_resume: tuple[AlertWorkflow, ...] = field(default=())
    """On a recovery notice: the workflows paused from the outage alert and not changed since,
    each with the status it had before the pause."""
    paused_from_outage: bool = False
    """On a recovery notice: someone paused workflows from the outage alert."""
    raised_at: datetime | None = None
    outage_id: int | None = None
    """On a recovery notice: the outage alert it closes."""


def button_value(alert_id: int, connector: str) -> str:
    return f"{alert_id}:{connector}"


def parse_button_value(value: str) -> tuple[int, str]:
    """The alert id and connector key a button carries; untrusted, so only the shape is
    checked here (the service checks they belong to the clicker's workspace)."""
    alert, _, connector = value.partition(":")
    if not alert.isdigit() or not connector:
        raise ValueError(value)
    return int(alert), connector


@dataclass(frozen=True)
class AlertTarget:
    """Which alert a command-line or API request means: the alert of that id, or the
    connector's latest "needs attention" alert (for a resume: that alert's recovery notice).
    With both, the connector is meant if the workspace has one of that key."""

    alert_id: int | None = None
    connector: str | None = None


MAX_ALERT_ID = 2**31 - 1
"""Ids are 32-bit on PostgreSQL: a larger number names no alert (rather than a driver error)."""


def parse_target(text: str) -> AlertTarget:
    """`crm` a connector; `#12` alert 12; `12` connector 12 if there is one, else alert 12
    (keys may be all digits, so a bare number cannot be taken for an id alone)."""
    text = text.strip()
    number = text.removeprefix("#")
    as_id = int(number) if number.isdigit() and number.isascii() else None
    if as_id is not None and as_id > MAX_ALERT_ID:
        as_id = 0  # names nothing, like any unknown id
    if text.startswith("#"):
        return AlertTarget(alert_id=as_id) if as_id is not None else AlertTarget(connector=text)
    return AlertTarget(alert_id=as_id, connector=text.lower())

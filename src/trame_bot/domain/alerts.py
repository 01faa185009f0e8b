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
    """On a recovery notice: the workflows paused from the outage alert and not changed since."""
    paused_from_outage: bool = False
    """On a recovery notice: someone paused workflows from the outage alert."""


def button_value(alert_id: int, connector: str) -> str:
    return f"{alert_id}:{connector}"


def parse_button_value(value: str) -> tuple[int, str]:
    """The alert id and connector key a button carries; untrusted, so only the shape is
    checked here (the service checks they belong to the clicker's workspace)."""
    alert, _, connector = value.partition(":")
    if not alert.isdigit() or not connector:
        raise ValueError(value)
    return int(alert), connector

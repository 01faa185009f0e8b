"""A pilot's record since its plan last changed: what became of the runs of its current plan
(approved, declined and why, expired, still pending) and how its connectors held up, read from
the audit log; and what the go-live form warns about. Pure: the service reads the events, this
decides what they mean (docs/governance.md, "Promote with evidence")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from trame_bot.domain.downtime import Change, Span, bad_spans, total
from trame_bot.domain.enums import Health

SAVED = frozenset({"workflow.created", "workflow.changed"})
HEALTH = "connector.health_changed"
FINAL = {
    "run.approved": "approved",
    "run.declined": "declined",
    "run.expired": "expired",
    "run.cancelled": "cancelled",
}
RECENT_DECLINES = timedelta(days=7)
"""A decline this recent makes the go-live form warn: the pilot is still finding problems."""


@dataclass(frozen=True)
class Event:
    """One audit event, as much of it as the record reads."""

    seq: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    data: Mapping[str, Any]
    reason: str | None


@dataclass(frozen=True)
class DeclinedRun:
    run_id: str
    at: datetime
    by: str
    """Who declined it, as the audit log names them (`slack:U…`)."""
    category: str | None
    reason: str | None


@dataclass(frozen=True)
class ConnectorRecord:
    key: str
    health: Health
    """Its health now."""
    unhealthy: Sequence[Span]
    """Its unhealthy stretches since the plan was saved (the last one open if it still is)."""

    @property
    def unhealthy_for(self) -> timedelta:
        return total(self.unhealthy)


@dataclass(frozen=True)
class PilotRecord:
    version: int
    since: datetime
    """When the current version of the plan was saved: nothing before it counts."""
    approved: int
    declined: Sequence[DeclinedRun]
    """Newest first."""
    expired: int
    pending: int
    cancelled: int
    refused: int
    """Refused by the gate at request (a connector that could not run it, for example)."""
    connectors: Sequence[ConnectorRecord]

    def declined_since(self, moment: datetime) -> list[DeclinedRun]:
        return [d for d in self.declined if d.at >= moment]


def version_saved_at(events: Iterable[Event], version: int) -> datetime | None:
    """When `version` was first saved: the workflow's creation or the change that bumped it
    (later changes that left the plan alone keep the version and do not restart the record)."""
    for event in events:
        if (
            event.entity_type == "workflow"
            and event.action in SAVED
            and event.data.get("version") == version
        ):
            return event.at
    return None


def pilot_record(
    events: Sequence[Event],
    *,
    version: int,
    connectors: Sequence[str],
    saved_fallback: datetime,
    now: datetime,
) -> PilotRecord:
    """The record from `events` in chain order: the workflow's saves, the events of the runs
    requested in pilot with the current plan (the store selects them by fingerprint, which
    covers the version), and the health changes of the plan's connectors (the last one before
    the record began gives a connector's state at its start; none means healthy).
    `saved_fallback` stands in for the save time when the log holds no save of this version."""
    since = version_saved_at(events, version) or saved_fallback
    states: dict[str, str] = {}
    declined: list[DeclinedRun] = []
    for e in events:
        if e.entity_type != "run":
            continue
        if e.action == "run.requested":
            requested = str(e.data.get("state", "pending"))
            states[e.entity_id] = "refused" if requested == "rejected" else requested
        elif e.action in FINAL:
            states[e.entity_id] = FINAL[e.action]
            if e.action == "run.declined":
                category = e.data.get("category")
                declined.append(
                    DeclinedRun(
                        e.entity_id,
                        e.at,
                        e.actor,
                        str(category) if category else None,
                        e.reason,
                    )
                )
    outcomes = list(states.values())
    return PilotRecord(
        version=version,
        since=since,
        approved=outcomes.count("approved"),
        declined=tuple(sorted(declined, key=lambda d: d.at, reverse=True)),
        expired=outcomes.count("expired"),
        pending=outcomes.count("pending"),
        cancelled=outcomes.count("cancelled"),
        refused=outcomes.count("refused"),
        connectors=tuple(_connector(events, key, since, now) for key in connectors),
    )


def _connector(
    events: Sequence[Event], key: str, since: datetime, now: datetime
) -> ConnectorRecord:
    changes = [
        e
        for e in events
        if e.entity_type == "connector" and e.entity_id == key and e.action == HEALTH
    ]
    health = Health(str(changes[-1].data.get("after", "ok"))) if changes else Health.OK
    spans = bad_spans(
        [Change(e.at, e.data.get("after") != Health.OK.value) for e in changes],
        since=since,
        until=now,
    )
    return ConnectorRecord(key, health, tuple(spans))


@dataclass(frozen=True)
class GoLiveWarnings:
    """What the go-live form warns about. Warnings, not refusals: the sign-off is the admin's
    call, and the form makes sure it is an informed one."""

    recent_declines: Sequence[DeclinedRun]
    """Runs the pilot declined in the last 7 days, newest first."""
    approved: int
    minimum_approved: int
    """The workspace's "minimum approved pilot runs"."""

    @property
    def too_few_approved(self) -> bool:
        return self.approved < self.minimum_approved

    def __bool__(self) -> bool:
        return bool(self.recent_declines) or self.too_few_approved


def go_live_warnings(
    record: PilotRecord, *, minimum_approved: int, now: datetime
) -> GoLiveWarnings:
    return GoLiveWarnings(
        tuple(record.declined_since(now - RECENT_DECLINES)), record.approved, minimum_approved
    )

"""An incident report's content, assembled from audit events: the timeline, how long each
workflow was paused and each connector unhealthy, the runs, the remediation, and the chain
anchors that tie it to its JSONL export. Pure: the service reads, this decides what it means."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from trame_bot.domain.downtime import Change, Span, bad_spans, total

PAUSES = "workflow.status_changed"
HEALTH = "connector.health_changed"
NOT_REMEDIATION = frozenset({"workflow.created", "connector.connected", "audit.exported"})


@dataclass(frozen=True)
class Entry:
    """One audit event as the report shows it (and as its export holds it)."""

    seq: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    summary: str
    reason: str | None
    data: Mapping[str, Any]
    prev_hash: str
    hash: str

    @property
    def entity(self) -> str:
        return f"{self.entity_type}:{self.entity_id}"


@dataclass(frozen=True)
class Outage:
    """A workflow's pauses or a connector's unhealthy stretches within the window."""

    entity_type: str
    key: str
    state: str
    """"paused" or "unhealthy"."""
    spans: Sequence[Span]

    @property
    def total(self) -> timedelta:
        return total(self.spans)


@dataclass(frozen=True)
class Decline:
    at: datetime
    run_id: str
    workflow: str
    by: str
    category: str | None
    reason: str | None


@dataclass(frozen=True)
class RunCounts:
    requested: int = 0
    approved: int = 0
    declined: int = 0
    expired: int = 0
    cancelled: int = 0
    refused: int = 0
    """Refused by the gate at request (a paused workflow, a connector that cannot run it)."""


@dataclass(frozen=True)
class Anchors:
    """Where the report's events sit in the chain, and the export that proves it."""

    first_seq: int
    last_seq: int
    first_prev_hash: str
    last_hash: str
    exported: int
    """Events in the export beside the report: every event of the chain from first to last."""


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


@dataclass(frozen=True)
class IncidentReport:
    workspace: str
    workspace_name: str
    timezone: str
    entity: str
    """`workflow:<key>` or `connector:<key>`: what the report is about."""
    entity_name: str
    window: Window
    generated_at: datetime
    generated_by: str
    workflows: Sequence[str]
    """The workflows in scope: the one reported on, or those that use the connector."""
    connectors: Sequence[str]
    """The connectors in scope: the one reported on, or those the workflow's steps use."""
    timeline: Sequence[Entry]
    outages: Sequence[Outage]
    runs: RunCounts
    declines: Sequence[Decline]
    remediation: Sequence[Entry]
    anchors: Anchors | None
    """None when no event falls in the window (there is nothing to anchor)."""
    notes: Sequence[str] = field(default_factory=tuple)


def is_bad(entry: Entry) -> bool | None:
    """Whether a state change leaves its entity paused or unhealthy; None for other events."""
    if entry.action == PAUSES:
        return entry.data.get("after") == "paused"
    if entry.action == HEALTH:
        return entry.data.get("after") != "ok"
    return None


def outages(
    events: Sequence[Entry],
    before: Sequence[Entry],
    *,
    workflows: Sequence[str],
    connectors: Sequence[str],
    window: Window,
) -> list[Outage]:
    """Each workflow's pauses and each connector's unhealthy stretches in the window.

    `before` holds each entity's last state change before the window (its state at the start)."""
    found: list[Outage] = []
    for kind, keys, state in (
        ("workflow", workflows, "paused"),
        ("connector", connectors, "unhealthy"),
    ):
        for key in keys:
            changes = [
                Change(e.at, bad)
                for e in (*before, *events)
                if e.entity_type == kind and e.entity_id == key and (bad := is_bad(e)) is not None
            ]
            found.append(
                Outage(kind, key, state, bad_spans(changes, since=window.since, until=window.until))
            )
    return found


def run_counts(events: Sequence[Entry]) -> RunCounts:
    counts = dict.fromkeys(RunCounts.__dataclass_fields__, 0)
    for e in events:
        if e.action == "run.requested":
            counts["requested"] += 1
            state = e.data.get("state")
            if state == "approved":  # the gate let it go without a reviewer
                counts["approved"] += 1
            elif state == "rejected":
                counts["refused"] += 1
        elif e.action.startswith("run.") and e.action[4:] in counts:
            counts[e.action[4:]] += 1
    return RunCounts(**counts)


def declines(events: Sequence[Entry]) -> list[Decline]:
    return [
        Decline(
            e.at,
            e.entity_id,
            str(e.data.get("workflow", "")),
            e.actor,
            e.data.get("category"),
            e.reason,
        )
        for e in events
        if e.action == "run.declined"
    ]


def remediation(events: Sequence[Entry]) -> list[Entry]:
    """What people (or the engine) did about it: status and trigger changes, plan and connector
    changes, recoveries. Runs and a connector getting worse are what happened, not remedies."""
    return [
        e
        for e in events
        if not e.action.startswith("run.")
        and e.action not in NOT_REMEDIATION
        and not (e.action == HEALTH and is_bad(e))
    ]


def category_label(category: str | None) -> str:
    return category.replace("_", " ").capitalize() if category else "—"

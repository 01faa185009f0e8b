"""Plain view objects: what services hand to presentation (Slack blocks, CLI, API)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from trame_bot.domain.enums import Access, Health, RunState, Source, Status, Verdict
from trame_bot.domain.pilot import PilotRecord


@dataclass(frozen=True)
class StepView:
    name: str
    tool: str
    connector: str
    access: Access
    health: Health | None
    """None when the connector is not one of the workspace's."""
    scopes_widened: bool = False
    """The connector was granted more since the run was requested (domain/scopes.py)."""


@dataclass(frozen=True)
class DecisionView:
    user: str
    verdict: Verdict
    reason: str | None
    category: str | None
    at: datetime


@dataclass(frozen=True)
class RunCard:
    """Everything an approval card shows about one run."""

    run_id: str
    workspace_key: str
    channel: str
    slack_ts: str | None
    workflow_key: str
    workflow_name: str
    workflow_status: Status
    production: bool
    requested_by: str | None
    source: Source
    trigger: str | None
    steps: tuple[StepView, ...]
    details: dict[str, str]
    """Required details, already masked."""
    prompt_warnings: tuple[str, ...]
    fingerprint: str
    approvals: int
    required_approvals: int
    reviewers: tuple[str, ...]
    state: RunState
    reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    requested_at: datetime
    expires_at: datetime | None
    decisions: tuple[DecisionView, ...] = field(default=())


@dataclass(frozen=True)
class PendingView:
    run_id: str
    workspace_key: str
    workflow_key: str
    workflow_name: str
    requested_by: str | None
    requested_at: datetime
    approvals: int
    required_approvals: int
    channel: str
    slack_ts: str | None


@dataclass(frozen=True)
class WorkflowLine:
    key: str
    name: str
    status: Status
    version: int
    production: bool
    pending_runs: int
    triggers: tuple[tuple[str, bool], ...]
    unhealthy_connectors: tuple[str, ...]
    pilot: PilotRecord | None = None
    """Its pilot record, where it was asked for (`/trame status <workflow>` of a pilot)."""


@dataclass(frozen=True)
class ConnectorLine:
    key: str
    toolkit: str
    health: Health
    since: datetime
    last_error: str | None
    expires_at: datetime | None
    over_privileged: tuple[str, ...] = ()
    """Scope words no step of the workspace's workflows needs (domain/scopes.py)."""


LINES_PER_STATUS = 10
"""How many workflows of each status a list shows (the first by key)."""


@dataclass(frozen=True)
class WorkflowList:
    """A workspace's workflows as `/trame workflows` and App Home list them: how many have each
    status, and lines for (at least) the first `LINES_PER_STATUS` of each by key."""

    counts: dict[Status, int]
    lines: tuple[WorkflowLine, ...]


@dataclass(frozen=True)
class Summary:
    """A workspace in figures: `/trame status` with no workflow named. Counts rather than
    lines, so that it reads as little with ten thousand workflows as with ten."""

    workspace_key: str
    workspace_name: str
    workflows: dict[Status, int]
    """How many workflows have each status (a status with none is missing)."""
    pending_runs: int
    unhealthy: tuple[str, ...]
    """The keys of the connectors that are not healthy, in order."""
    failed_deliveries: int
    audit_head: str
    audit_events: int


@dataclass(frozen=True)
class HomeSection:
    """A workspace as App Home shows it: its workflows as `/trame workflows` lists them, the
    connectors needing attention, how many runs wait and the audit chain's head. Counted and
    listed from indexes, so it reads no more workflows with ten thousand than with ten."""

    workspace_name: str
    listing: WorkflowList
    unhealthy: tuple[ConnectorLine, ...]
    pending_runs: int
    audit_head: str


@dataclass(frozen=True)
class Overview:
    """A workspace at a glance, every workflow and connector: the digest."""

    workspace_key: str
    workspace_name: str
    workflows: tuple[WorkflowLine, ...]
    connectors: tuple[ConnectorLine, ...]
    pending: tuple[PendingView, ...]
    failed_deliveries: int
    audit_head: str
    audit_events: int

    @property
    def unhealthy(self) -> tuple[ConnectorLine, ...]:
        return tuple(c for c in self.connectors if c.health is not Health.OK)


@dataclass(frozen=True)
class DeclineView:
    """A run declined since the previous digest (the digest's "Declined" section)."""

    workflow_name: str
    requested_by: str | None
    declined_by: str | None
    declined_at: datetime
    category: str | None
    reason: str | None


@dataclass(frozen=True)
class PausedView:
    """A paused workflow and when it was paused (its last `workflow.status_changed` event)."""

    workflow_key: str
    workflow_name: str
    paused_at: datetime


@dataclass(frozen=True)
class ApprovalsDigest:
    """What the digest adds beside connector health: declines since `since`, paused workflows."""

    since: datetime
    declined_total: int
    declined: tuple[DeclineView, ...]
    paused: tuple[PausedView, ...]

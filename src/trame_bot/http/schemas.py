"""The API's request and response bodies. The OpenAPI document is generated from these and
from the documents of `trame_bot.documents`, so the description cannot drift from the code."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from trame_bot.documents import DetailValue, Key, UserId
from trame_bot.domain.enums import Access, Health, RunState, Source, Status, TriggerKind, Verdict

Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignOffIn(Body):
    by: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    evidence: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
    ]


class PauseRollbackIn(Body):
    """The rollback plan pauses the workflow."""

    action: Literal["pause"]
    notes: Reason | None = None


class DisableTriggersRollbackIn(Body):
    """The rollback plan disables these triggers of the workflow."""

    action: Literal["disable_triggers"]
    triggers: list[Key] = Field(min_length=1, max_length=50)
    notes: Reason | None = None


RollbackPlanIn = Annotated[
    PauseRollbackIn | DisableTriggersRollbackIn, Field(discriminator="action")
]


class StatusChangeIn(Body):
    status: Status
    actor: UserId = Field(description="The Slack user making the change; their role applies.")
    reason: Reason | None = None
    sign_off: SignOffIn | None = None
    rollback_plan: RollbackPlanIn | Reason | None = Field(
        default=None,
        description="Needed to go live: what `/trame rollback` and the Roll back button do "
        "(pause the workflow, or disable the named triggers), or (older form) free text, kept "
        "as the notes of a plan that pauses the workflow.",
    )


class TriggerIn(Body):
    enabled: bool
    actor: UserId = Field(description="The Slack user making the change; their role applies.")


class HealthReportIn(Body):
    status: Literal["ok", "error", "disconnected"]
    error: Reason | None = None


class AlertActionIn(Body):
    actor: UserId | None = Field(
        default=None,
        description="The Slack user acting; their role applies. Without one the API key acts "
        "as a member: it may pause, and resuming (admin) is refused.",
    )


class VerifyIn(Body):
    fingerprint: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)
    ]


class ErrorOut(BaseModel):
    error: str = Field(description="A stable code: not_found, forbidden, conflict, invalid_input…")
    message: str = Field(description="What happened and what to do, safe to show to a person.")
    fields: dict[str, str] | None = Field(default=None, description="Offending fields, when known.")


class StepOut(BaseModel):
    name: str
    tool: str
    connector: str
    action: str | None
    access: Access


class TriggerOut(BaseModel):
    key: str
    kind: TriggerKind
    enabled: bool


class RollbackPlanOut(BaseModel):
    action: Literal["pause", "disable_triggers"] = Field(
        description="What `/trame rollback` and the Roll back button do."
    )
    triggers: list[str] = Field(description="The triggers a `disable_triggers` plan turns off.")
    notes: str
    structured: bool = Field(
        description="False for a free-text plan from before plans were structured: it pauses "
        "the workflow, its text kept as the notes."
    )


class WorkflowOut(BaseModel):
    key: str
    name: str
    status: Status
    version: int
    production: bool
    required_approvals: int
    reviewers: list[str]
    prompt: str
    required_details: dict[str, DetailValue]
    steps: list[StepOut]
    triggers: list[TriggerOut]
    fingerprint: str = Field(description="Fingerprint of the workflow's own plan at this version.")
    rollback_plan: RollbackPlanOut | None = Field(
        description="The rollback plan signed off at go-live; null before the first go-live."
    )
    updated_at: datetime


class DeclinedRunOut(BaseModel):
    run_id: str
    at: datetime
    by: str = Field(description="Who declined it, as the audit log names them (`slack:U…`).")
    category: str | None
    reason: str | None


class UnhealthySpanOut(BaseModel):
    start: datetime = Field(description="The pilot's start when it was unhealthy already.")
    end: datetime = Field(description="Now, while it is still unhealthy.")
    ongoing: bool


class PilotConnectorOut(BaseModel):
    key: str
    health: Health = Field(description="Its health now.")
    unhealthy_seconds: int = Field(description="How long it was unhealthy during the pilot.")
    unhealthy: list[UnhealthySpanOut]


class PilotRecordOut(BaseModel):
    """What the pilot showed since its plan last changed: only runs requested in pilot with
    the workflow's own plan at this version count."""

    version: int
    since: datetime = Field(description="When this version of the plan was saved.")
    approved: int
    declined: list[DeclinedRunOut] = Field(description="Newest first.")
    expired: int
    pending: int
    cancelled: int
    refused: int = Field(description="Refused by the gate when requested.")
    connectors: list[PilotConnectorOut] = Field(description="Each connector the plan uses.")


class WorkflowDetailOut(WorkflowOut):
    pilot: PilotRecordOut | None = Field(
        description="The pilot's record while the workflow is in pilot; null otherwise."
    )


class ConnectorOut(BaseModel):
    key: str
    toolkit: str
    account: str
    scopes: list[str]
    health: Health
    health_since: datetime
    last_error: str | None
    last_checked_at: datetime | None
    health_url: str | None
    expires_at: datetime | None


class ApprovalsOut(BaseModel):
    required: int
    received: int


class DecisionOut(BaseModel):
    user: str
    verdict: Verdict
    reason: str | None
    category: str | None
    at: datetime


class RunOut(BaseModel):
    id: str
    workflow: str
    state: RunState
    reason: str | None
    fingerprint: str
    approvals: ApprovalsOut
    source: Source
    trigger: str | None
    requested_by: str | None
    requested_at: datetime
    expires_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    decisions: list[DecisionOut] = Field(default_factory=list)


class VerifiedOut(BaseModel):
    id: str
    state: RunState
    fingerprint: str
    verified: Literal[True] = True


class WorkflowList(BaseModel):
    items: list[WorkflowOut]


class ConnectorListItem(ConnectorOut):
    over_privileged: list[str] = Field(
        description="Its scope words no step of the workspace's workflows needs: `write` or "
        "`write:<target>` when no step writes through it, broad words (`*`, `all`, `admin`) "
        "always, the source system's own words unless a step writes. Narrow them in the source "
        "system, then re-apply the connector."
    )


class ConnectorList(BaseModel):
    items: list[ConnectorListItem]


class AlertWorkflowOut(BaseModel):
    key: str
    name: str
    status: str = Field(description="See the list it is in.")


class AlertOut(BaseModel):
    id: int
    kind: Literal["needs_attention", "recovered"]
    connector: str
    raised_at: datetime
    health: Health | None = Field(description="The connector's health when the alert was raised.")
    error: str | None
    outage_id: int | None = Field(
        description="On a recovery notice: the id of the “needs attention” alert it closes."
    )
    workflows: list[AlertWorkflowOut] = Field(
        description="The workflows using the connector when it was raised, with their status then."
    )
    acted_by: str | None = Field(
        description="Who paused (a “needs attention” alert) or resumed (a recovery notice) from "
        "it: a Slack user id, or `cli`, `api:<key name>` when no user was named."
    )
    acted_at: datetime | None
    acted_on: list[AlertWorkflowOut] = Field(
        description="The workflows paused or resumed from it, each with the status it had "
        "before the pause (the one a resume returns it to)."
    )
    to_resume: list[AlertWorkflowOut] = Field(
        description="On a recovery notice not acted on yet: what resuming would resume now (the "
        "workflows paused from the outage and unchanged since), each with the status it would go "
        "back to."
    )


class AlertList(BaseModel):
    items: list[AlertOut] = Field(description="Newest first, at most 50.")


class ActedOut(BaseModel):
    action: Literal["paused", "resumed"]
    workflows: list[AlertWorkflowOut] = Field(
        description="The workflows paused or resumed, each with the status it had before the "
        "pause; empty when pausing found every one paused already."
    )
    connector_health: Health = Field(description="The connector's health now.")
    alert: AlertOut = Field(
        description="The alert acted from, as it stands now: the outage alert for a pause, its "
        "recovery notice for a resume. Its Slack message is updated the same way."
    )

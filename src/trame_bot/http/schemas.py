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
    updated_at: datetime


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

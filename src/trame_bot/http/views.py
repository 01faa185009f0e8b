"""Store rows → API response models."""

from __future__ import annotations

from collections.abc import Sequence

from trame_bot.domain.plan import fingerprint, steps_from_dicts
from trame_bot.http.schemas import (
    ApprovalsOut,
    ConnectorListItem,
    ConnectorOut,
    DecisionOut,
    RunOut,
    StepOut,
    TriggerOut,
    WorkflowOut,
)
from trame_bot.services.scopes import Granted
from trame_bot.store.models import Connector, Decision, Run, Workflow


def workflow_out(w: Workflow) -> WorkflowOut:
    return WorkflowOut(
        key=w.key,
        name=w.name,
        status=w.status,
        version=w.version,
        production=w.production,
        required_approvals=w.required_approvals,
        reviewers=list(w.reviewers),
        prompt=w.prompt,
        required_details=dict(w.required_details),
        steps=[StepOut(**s.to_dict()) for s in steps_from_dicts(w.steps)],
        triggers=[TriggerOut(key=t.key, kind=t.kind, enabled=t.enabled) for t in w.triggers],
        fingerprint=fingerprint(steps_from_dicts(w.steps), w.version),
        updated_at=w.updated_at,
    )


def connector_out(c: Connector) -> ConnectorOut:
    return ConnectorOut(
        key=c.key,
        toolkit=c.toolkit,
        account=c.account,
        scopes=list(c.scopes),
        health=c.health,
        health_since=c.health_since,
        last_error=c.last_error,
        last_checked_at=c.last_checked_at,
        health_url=c.health_url,
        expires_at=c.expires_at,
    )


def connector_list_item(granted: Granted) -> ConnectorListItem:
    return ConnectorListItem(
        **connector_out(granted.connector).model_dump(),
        over_privileged=list(granted.over_privileged),
    )


def run_out(run: Run, workflow_key: str, decisions: Sequence[Decision] = ()) -> RunOut:
    return RunOut(
        id=run.id,
        workflow=workflow_key,
        state=run.state,
        reason=run.reason,
        fingerprint=run.fingerprint,
        approvals=ApprovalsOut(required=run.required_approvals, received=run.approvals),
        source=run.source,
        trigger=run.trigger_key,
        requested_by=run.requested_by,
        requested_at=run.requested_at,
        expires_at=run.expires_at,
        decided_at=run.decided_at,
        decided_by=run.decided_by,
        decisions=[
            DecisionOut(
                user=d.user, verdict=d.verdict, reason=d.reason, category=d.category, at=d.at
            )
            for d in decisions
        ],
    )

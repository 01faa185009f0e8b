"""Store rows → API response models."""

from __future__ import annotations

from collections.abc import Sequence

from trame_bot.domain.alerts import AlertView, AlertWorkflow
from trame_bot.domain.enums import Health
from trame_bot.domain.pilot import PilotRecord
from trame_bot.domain.plan import steps_from_dicts
from trame_bot.domain.rollback import read_stored
from trame_bot.http.schemas import (
    AlertOut,
    AlertWorkflowOut,
    ApprovalsOut,
    ConnectorListItem,
    ConnectorOut,
    DecisionOut,
    DeclinedRunOut,
    PilotConnectorOut,
    PilotRecordOut,
    RollbackPlanOut,
    RunOut,
    StepOut,
    TriggerOut,
    UnhealthySpanOut,
    WorkflowDetailOut,
    WorkflowOut,
)
from trame_bot.services.scopes import Granted
from trame_bot.store.models import Connector, Decision, Run, Workflow


def workflow_out(w: Workflow) -> WorkflowOut:
    plan = read_stored(w.rollback_plan) if w.rollback_plan else None
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
        fingerprint=w.fingerprint,
        rollback_plan=None
        if plan is None
        else RollbackPlanOut(
            action=plan.action.value,
            triggers=list(plan.triggers),
            notes=plan.notes,
            structured=plan.structured,
        ),
        updated_at=w.updated_at,
    )


def workflow_detail_out(w: Workflow, record: PilotRecord | None) -> WorkflowDetailOut:
    return WorkflowDetailOut(
        **workflow_out(w).model_dump(),
        pilot=None if record is None else pilot_out(record),
    )


def pilot_out(record: PilotRecord) -> PilotRecordOut:
    return PilotRecordOut(
        version=record.version,
        since=record.since,
        approved=record.approved,
        declined=[
            DeclinedRunOut(run_id=d.run_id, at=d.at, by=d.by, category=d.category, reason=d.reason)
            for d in record.declined
        ],
        expired=record.expired,
        pending=record.pending,
        cancelled=record.cancelled,
        refused=record.refused,
        connectors=[
            PilotConnectorOut(
                key=c.key,
                health=c.health,
                unhealthy_seconds=int(c.unhealthy_for.total_seconds()),
                unhealthy=[
                    UnhealthySpanOut(start=s.start, end=s.end, ongoing=s.open_at_end)
                    for s in c.unhealthy
                ],
            )
            for c in record.connectors
        ],
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


def alert_out(view: AlertView) -> AlertOut:
    health = view.data.get("health")
    raised = [
        AlertWorkflow(str(w.get("key")), str(w.get("name")), str(w.get("status")))
        for w in view.data.get("workflows", [])
    ]
    assert view.raised_at is not None
    return AlertOut(
        id=view.alert_id,
        kind="needs_attention" if view.event == "connector.needs_attention" else "recovered",
        connector=view.connector,
        raised_at=view.raised_at,
        health=Health(health) if health in tuple(Health) else None,
        error=view.data.get("error"),
        outage_id=view.outage_id,
        workflows=_alert_workflows(raised),
        acted_by=view.acted_by,
        acted_at=view.acted_at,
        acted_on=_alert_workflows(view.acted_on),
        to_resume=_alert_workflows(view.to_resume),
    )


def _alert_workflows(workflows: Sequence[AlertWorkflow]) -> list[AlertWorkflowOut]:
    return [AlertWorkflowOut(key=w.key, name=w.name, status=w.status) for w in workflows]

"""Promote with evidence: a pilot's record since its plan last changed (runs approved,
declined and why, expired, pending; its connectors' health over the pilot), shown by the
go-live form, `/trame status <workflow>` and the API's workflow read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, Status
from trame_bot.domain.pilot import (
    Event,
    GoLiveWarnings,
    PilotRecord,
    go_live_warnings,
    pilot_record,
)
from trame_bot.domain.plan import connectors_of
from trame_bot.services.access import require
from trame_bot.services.context import Context
from trame_bot.services.workflow_status import check_can_go_live
from trame_bot.services.workflows import plan_of
from trame_bot.store import pilot as store
from trame_bot.store import workflows as workflow_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.direct import Lookup
from trame_bot.store.lookups import WorkflowRow
from trame_bot.store.models import Workflow


@dataclass(frozen=True)
class GoLiveForm:
    """What the go-live form shows besides its inputs."""

    workflow: Workflow
    record: PilotRecord
    warnings: GoLiveWarnings


async def record_in(lookup: Lookup, workflow: Workflow | WorkflowRow, now: datetime) -> PilotRecord:
    """The workflow's pilot record, in one statement on the lookup's connection."""
    return record_from(await store.pilot_events(lookup, workflow.id), workflow, now)


def record_from(
    events: Sequence[Event], workflow: Workflow | WorkflowRow, now: datetime
) -> PilotRecord:
    """The workflow's pilot record from its events (`store.pilot.record_events`)."""
    return pilot_record(
        events,
        version=workflow.version,
        connectors=connectors_of(plan_of(workflow)),
        saved_fallback=workflow.created_at,
        now=now,
    )


async def prepare_go_live(ctx: Context, key: str, ref: str, actor: Actor) -> GoLiveForm:
    """Refuse early what the go-live form could never achieve (wrong role or status), and
    gather the pilot's record and the warnings the form shows. Submitting goes through
    `workflow_status.change_status`, which checks everything again."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        workflow = await workflow_store.get(session, workspace.id, ref)
        role = await require(session, workspace, actor, Role.MEMBER, "changing a workflow's status")
        check_can_go_live(workflow, role)
    now = ctx.clock.now()
    async with ctx.db.lookups.connection() as lookup:
        record = await record_in(lookup, workflow, now)
    warnings = go_live_warnings(record, minimum_approved=workspace.min_approved_pilot_runs, now=now)
    return GoLiveForm(workflow, record, warnings)


async def workflow_with_record(
    ctx: Context, key: str, ref: str
) -> tuple[Workflow, PilotRecord | None]:
    """A workflow and, while it is in pilot, its record (the API's workflow read)."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        workflow = await workflow_store.get(session, workspace.id, ref)
    if workflow.status is not Status.PILOT:
        return workflow, None
    async with ctx.db.lookups.connection() as lookup:
        return workflow, await record_in(lookup, workflow, ctx.clock.now())

"""A workflow's parts as plain rows, read in the caller's session with Core statements
built once (SQLAlchemy compiles each once per dialect; a call only binds values): what the
overview lists and what `/trame status` falls back to for a name matched in Python. The reads
of every request are on the driver (`store.channel`, `store.glance`, `store.card`, and here
`triggers`, which every run request reads)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, bindparam, column, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.enums import Access, Health, RunState, Status
from trame_bot.store.direct import Lookup, Statement
from trame_bot.store.functions import array_elements
from trame_bot.store.models import (
    Connector,
    Member,
    Run,
    Trigger,
    Workflow,
    Workspace,
)
from trame_bot.store.partial import state_is

_ws = Workspace.__table__
_member = Member.__table__
_wf = Workflow.__table__
_trigger = Trigger.__table__
_run = Run.__table__
_connector = Connector.__table__


@dataclass(frozen=True)
class WorkflowRow:
    """A workflow's own columns, as the hot reads need them (no triggers, no ORM state)."""

    id: int
    workspace_id: int
    key: str
    name: str
    status: Status
    version: int
    production: bool
    steps: list[Any]
    created_at: datetime


_TRIGGERS = Statement(
    select(_trigger.c.key, _trigger.c.enabled)
    .where(_trigger.c.workflow_id == bindparam("workflow"))
    .order_by(_trigger.c.id)
)
_PENDING = (
    select(
        _run.c.id,
        _run.c.requested_by,
        _run.c.requested_at,
        _run.c.approvals,
        _run.c.required_approvals,
        _run.c.slack_channel,
        _run.c.slack_ts,
    )
    .where(_run.c.workflow_id == bindparam("workflow"), state_is(_run.c.state, RunState.PENDING))
    .order_by(_run.c.requested_at)
)
_WORKSPACE_HEALTH = select(_connector.c.key, _connector.c.health).where(
    _connector.c.workspace_id == bindparam("workspace")
)


_WORKFLOWS = (
    select(
        _wf.c.id,
        _wf.c.workspace_id,
        _wf.c.key,
        _wf.c.name,
        _wf.c.status,
        _wf.c.version,
        _wf.c.production,
        _wf.c.steps,
        _wf.c.created_at,
    )
    .where(_wf.c.workspace_id == bindparam("workspace"))
    .order_by(_wf.c.key)
)
_WORKSPACE_TRIGGERS = (
    select(_trigger.c.workflow_id, _trigger.c.key, _trigger.c.enabled)
    .select_from(_trigger.join(_wf, _wf.c.id == _trigger.c.workflow_id))
    .where(_wf.c.workspace_id == bindparam("workspace"))
    .order_by(_trigger.c.id)
)


async def health_in(session: AsyncSession, workspace_id: int) -> dict[str, Health]:
    """Every connector of the workspace, by key: its health."""
    connection = await session.connection()
    result = await connection.execute(_WORKSPACE_HEALTH, {"workspace": workspace_id})
    return {connector.key: connector.health for connector in result}


_step = array_elements(_wf.c.steps).table_valued(column("value", JSON))
_STEP_USES = (
    select(_step.c.value["connector"].as_string(), _step.c.value["access"].as_string())
    .select_from(_wf)
    .join(_step, true())
    .where(_wf.c.workspace_id == bindparam("workspace"))
    .distinct()
)


async def step_uses_in(session: AsyncSession, workspace_id: int) -> list[tuple[str, Access]]:
    """Each (connector, access) some step of some workflow of the workspace uses, once: what a
    connector's grants are judged against (`domain.scopes.over_privileged_in`). The database
    walks the steps; none of them comes back."""
    connection = await session.connection()
    result = await connection.execute(_STEP_USES, {"workspace": workspace_id})
    return [(connector, Access(access)) for connector, access in result]


async def workflows_of(
    session: AsyncSession, workspace_id: int
) -> tuple[list[WorkflowRow], dict[int, list[tuple[str, bool]]]]:
    """Every workflow of the workspace by key, as rows, with each one's triggers: what the
    overview lists (two statements, however many workflows there are)."""
    connection = await session.connection()
    params = {"workspace": workspace_id}
    rows = [WorkflowRow(*row) for row in (await connection.execute(_WORKFLOWS, params)).all()]
    triggers: dict[int, list[tuple[str, bool]]] = {}
    for workflow_id, key, enabled in (await connection.execute(_WORKSPACE_TRIGGERS, params)).all():
        triggers.setdefault(workflow_id, []).append((key, enabled))
    return rows, triggers


async def first_of_each_status(
    session: AsyncSession, workspace_id: int, statuses: Sequence[Status], limit: int
) -> tuple[list[WorkflowRow], dict[int, list[tuple[str, bool]]], dict[int, int]]:
    """The first `limit` workflows by key of each of `statuses`, with each one's triggers and
    number of pending runs: what a list shows, read from the index on workspace, status and
    key (a query per status), however many workflows the workspace has."""
    connection = await session.connection()
    rows: list[WorkflowRow] = []
    for status in statuses:
        query = _WORKFLOWS.where(_wf.c.status == status).limit(limit)
        first = await connection.execute(query, {"workspace": workspace_id})
        rows += [WorkflowRow(*row) for row in first.all()]
    ids = [row.id for row in rows]
    triggers: dict[int, list[tuple[str, bool]]] = {}
    pending: dict[int, int] = {}
    if ids:
        theirs = await connection.execute(
            select(_trigger.c.workflow_id, _trigger.c.key, _trigger.c.enabled)
            .where(_trigger.c.workflow_id.in_(ids))
            .order_by(_trigger.c.id)
        )
        for workflow_id, key, enabled in theirs.all():
            triggers.setdefault(workflow_id, []).append((key, enabled))
        counted = await connection.execute(
            select(_run.c.workflow_id, func.count())
            .where(_run.c.workflow_id.in_(ids), state_is(_run.c.state, RunState.PENDING))
            .group_by(_run.c.workflow_id)
        )
        pending = dict(counted.all())
    return rows, triggers, pending


async def triggers(lookup: Lookup, workflow_id: int) -> tuple[tuple[str, bool], ...]:
    """The workflow's triggers and whether each is on, on the driver (`store.direct`): what
    a status glance shows."""
    rows = await lookup(_TRIGGERS, {"workflow": workflow_id})
    return tuple((key, enabled) for key, enabled in rows)


async def pending_runs(session: AsyncSession, workflow_id: int) -> Sequence[Any]:
    """The workflow's pending runs, oldest first: id, requester, time, approvals, card."""
    connection = await session.connection()
    return (await connection.execute(_PENDING, {"workflow": workflow_id})).all()


def workflow_row(workflow: Workflow) -> WorkflowRow:
    return WorkflowRow(
        id=workflow.id,
        workspace_id=workflow.workspace_id,
        key=workflow.key,
        name=workflow.name,
        status=workflow.status,
        version=workflow.version,
        production=workflow.production,
        steps=workflow.steps,
        created_at=workflow.created_at,
    )

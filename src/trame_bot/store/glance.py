"""`/trame status <workflow>`, the command people send most: the channel's workspace, the
person's role, the workflow the words name, its triggers and pending runs and the workspace's
connectors and, for a pilot, its record's events, in one statement run on the driver
(`store.direct`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.enums import Health, Status
from trame_bot.domain.pilot import Event
from trame_bot.store.channel import (
    ChannelScope,
    naming_params,
    pick_named,
    scope_query,
    workflow_of,
)
from trame_bot.store.direct import Lookup, Statement
from trame_bot.store.functions import json_time
from trame_bot.store.lookups import WorkflowRow, health_in, pending_runs, triggers, workflow_row
from trame_bot.store.models import Workflow
from trame_bot.store.pilot import events_of, pilot_events

_GLANCE = {
    team: Statement(scope_query(of_team=team, naming=True, glance=True)) for team in (False, True)
}


@dataclass(frozen=True)
class Glance:
    """A workflow as `/trame status <workflow>` shows it."""

    workflow: WorkflowRow
    triggers: tuple[tuple[str, bool], ...]
    pending: list[PendingRow]
    health: dict[str, Health]
    """Every connector of the workspace."""
    pilot_events: list[Event] | None
    """A pilot's record's events (`store.pilot.record_events`); None for other statuses."""


@dataclass(frozen=True)
class PendingRow:
    id: str
    requested_by: str | None
    requested_at: datetime
    approvals: int
    required_approvals: int
    slack_channel: str | None
    slack_ts: str | None


async def channel_glance(
    lookup: Lookup, team_id: str | None, channel: str, user: str, words: Sequence[str]
) -> tuple[ChannelScope | None, Glance | None, tuple[str, ...]]:
    """The channel's scope and the glance of the workflow the leading `words` name (by key or
    name, any case, the longest match), with the words after it.

    Names are lowercased by the database, which folds only ASCII letters on SQLite: for a
    name with other letters the glance may be None with a scope, and the caller matches in
    Python (`glance_of`)."""
    params, names = naming_params(team_id, channel, user, words)
    rows = await lookup(_GLANCE[team_id is not None], params)
    scope, row, rest = pick_named(rows, names, words)
    if row is None:
        return scope, None, rest
    pending = [
        PendingRow(id_, by, json_time(at), approvals, required, slack_channel, ts)
        for at, id_, by, approvals, required, slack_channel, ts in row.wf_pending
    ]
    pending.sort(key=lambda run: run.requested_at)
    workflow = workflow_of(row)
    glance = Glance(
        workflow=workflow,
        triggers=tuple((key, bool(on)) for _, key, on in sorted(row.wf_triggers)),
        pending=pending,
        health={key: Health(health) for key, health in row.ws_connectors},
        pilot_events=None if row.wf_record is None else events_of(row.wf_record),
    )
    return scope, glance, rest


async def glance_of(session: AsyncSession, lookup: Lookup, workflow: Workflow) -> Glance:
    """The glance of a workflow already found (by a name matched in Python)."""
    return Glance(
        workflow=workflow_row(workflow),
        triggers=await triggers(lookup, workflow.id),
        pending=[PendingRow(*run) for run in await pending_runs(session, workflow.id)],
        health=await health_in(session, workflow.workspace_id),
        pilot_events=await pilot_events(lookup, workflow.id)
        if workflow.status is Status.PILOT
        else None,
    )

"""Read models for people: a workspace at a glance, and what waits for one reviewer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.actors import Actor
from trame_bot.domain.approvals import check_reviewer
from trame_bot.domain.enums import Health, Role, Verdict
from trame_bot.domain.plan import connectors_of
from trame_bot.domain.roles import check_at_least
from trame_bot.domain.views import (
    LINES_PER_STATUS,
    ConnectorLine,
    HomeSection,
    Overview,
    PendingView,
    Summary,
    WorkflowLine,
    WorkflowList,
)
from trame_bot.errors import ChannelNotBound, Forbidden
from trame_bot.services import pilot as pilot_service
from trame_bot.services import scopes as scope_service
from trame_bot.services.access import require
from trame_bot.services.context import Context
from trame_bot.services.naming import named_in
from trame_bot.services.workflows import plan_of
from trame_bot.store import audit as audit_store
from trame_bot.store import connectors as connector_store
from trame_bot.store import glance as glance_store
from trame_bot.store import lookups
from trame_bot.store import outbox as outbox_store
from trame_bot.store import runs as run_store
from trame_bot.store import workflows as workflow_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.lookups import WorkflowRow
from trame_bot.store.models import Connector, Workflow, Workspace


async def overview(ctx: Context, key: str, actor: Actor) -> Overview:
    """Members only: the workspace's workflows, connectors, pending runs and chain head."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        await require(session, workspace, actor, Role.MEMBER, "seeing this workspace")
        return await overview_in(session, workspace)


async def summary(ctx: Context, key: str, actor: Actor) -> Summary:
    """Members only: the workspace in figures (`/trame status`). Every figure is counted by
    the database from an index: no workflow or run is read to be counted. The connectors
    (a few per workspace) are read with their health, as the list reads them."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        await require(session, workspace, actor, Role.MEMBER, "seeing this workspace")
        head = await audit_store.head(session, workspace.id)
        health = await lookups.health_in(session, workspace.id)
        return Summary(
            workspace_key=workspace.key,
            workspace_name=workspace.name,
            workflows=await workflow_store.count_by_status(session, workspace.id),
            pending_runs=await run_store.pending_count(session, workspace.id),
            unhealthy=tuple(sorted(k for k, h in health.items() if h is not Health.OK)),
            failed_deliveries=await outbox_store.failed_count(session, workspace.id),
            audit_head=head.hash,
            audit_events=head.seq,
        )


async def workflow_list(ctx: Context, key: str, actor: Actor) -> WorkflowList:
    """Members only: `/trame workflows`, how many workflows have each status and the first
    `LINES_PER_STATUS` of each by key. Read from the index on workspace, status and key, so it
    reads as much with ten thousand workflows as with a few dozen."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        await require(session, workspace, actor, Role.MEMBER, "seeing this workspace")
        return await _listing_in(
            session, workspace.id, await lookups.health_in(session, workspace.id)
        )


async def _listing_in(
    session: AsyncSession, workspace_id: int, health: Mapping[str, Health]
) -> WorkflowList:
    """`workflow_list` inside the caller's session, given the connectors' `health`."""
    counts = await workflow_store.count_by_status(session, workspace_id)
    rows, triggers, pending = await lookups.first_of_each_status(
        session, workspace_id, list(counts), LINES_PER_STATUS
    )
    return WorkflowList(
        counts,
        tuple(_line(w, triggers.get(w.id, ()), pending.get(w.id, 0), health) for w in rows),
    )


async def connector_list(ctx: Context, key: str, actor: Actor) -> tuple[ConnectorLine, ...]:
    """Members only: `/trame connectors`, each connector with its health and the grants no
    workflow of the workspace uses. Of the workflows it reads their steps and nothing else
    (the full overview also builds each one's line, with its triggers and pending runs)."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        await require(session, workspace, actor, Role.MEMBER, "seeing this workspace")
        connectors = await connector_store.list_for(session, workspace.id)
        flagged = await scope_service.over_privileged_in(session, workspace.id, connectors)
    return _connector_lines(connectors, flagged)


async def workflow_glance(
    ctx: Context, channel: str, team_id: str | None, user: str, words: tuple[str, ...]
) -> tuple[WorkflowLine, list[PendingView]]:
    """The workflow the words name in the channel's workspace, at a glance (`/trame status
    <workflow>`, the most frequent command): its line and pending runs, in one statement on
    the driver (`store.glance`), a pilot's record included."""
    async with ctx.db.lookups.connection() as lookup:
        scope, glance, _ = await glance_store.channel_glance(lookup, team_id, channel, user, words)
        if scope is None:
            raise ChannelNotBound(channel)
        check_at_least(scope.role, Role.MEMBER, "seeing this workspace")
        if glance is None:
            # Not an ASCII key or name: match as every other command does, in Python.
            async with ctx.db.lookup() as session:
                ref, _ = await named_in(session, scope.workspace_id, words)
                glance = await glance_store.glance_of(
                    session, lookup, await workflow_store.get(session, scope.workspace_id, ref)
                )
        workflow, triggers, pending = glance.workflow, glance.triggers, glance.pending
        keys = connectors_of(plan_of(workflow))
        health = glance.health
        events = glance.pilot_events
        pilot = (
            None if events is None else pilot_service.record_from(events, workflow, ctx.clock.now())
        )
    line = WorkflowLine(
        key=workflow.key,
        name=workflow.name,
        status=workflow.status,
        version=workflow.version,
        production=workflow.production,
        pending_runs=len(pending),
        triggers=triggers,
        unhealthy_connectors=tuple(sorted(k for k in keys if health.get(k) is not Health.OK)),
        pilot=pilot,
    )
    return line, [
        _pending(run, scope.workspace_key, scope.approvals_channel, workflow) for run in pending
    ]


async def overview_in(session: AsyncSession, workspace: Workspace) -> Overview:
    """The workspace at a glance, inside the caller's session (the digest's transaction)."""
    connectors = await connector_store.list_for(session, workspace.id)
    health = {c.key: c.health for c in connectors}
    workflows, triggers = await lookups.workflows_of(session, workspace.id)
    pending = await run_store.pending_in(session, workspace.id)
    pending_by_workflow = Counter(run.workflow_id for run in pending)
    names = {w.id: w for w in workflows}
    failed = await outbox_store.failed_count(session, workspace.id)
    head = await audit_store.head(session, workspace.id)
    flagged = await scope_service.over_privileged_in(session, workspace.id, connectors)
    return Overview(
        workspace_key=workspace.key,
        workspace_name=workspace.name,
        workflows=tuple(
            _line(w, triggers.get(w.id, ()), pending_by_workflow[w.id], health) for w in workflows
        ),
        connectors=_connector_lines(connectors, flagged),
        pending=tuple(
            _pending(run, workspace.key, workspace.approvals_channel, names[run.workflow_id])
            for run in pending
        ),
        failed_deliveries=failed,
        audit_head=head.hash,
        audit_events=head.seq,
    )


def _connector_lines(
    connectors: Sequence[Connector], flagged: Mapping[str, tuple[str, ...]]
) -> tuple[ConnectorLine, ...]:
    """Each connector as the lists show it, with its `flagged` grants (no step needs them)."""
    return tuple(
        ConnectorLine(
            c.key,
            c.toolkit,
            c.health,
            c.health_since,
            c.last_error,
            c.expires_at,
            over_privileged=flagged.get(c.key, ()),
        )
        for c in connectors
    )


def _line(
    workflow: WorkflowRow,
    triggers: Sequence[tuple[str, bool]],
    pending_runs: int,
    health: Mapping[str, Health],
) -> WorkflowLine:
    return WorkflowLine(
        key=workflow.key,
        name=workflow.name,
        status=workflow.status,
        version=workflow.version,
        production=workflow.production,
        pending_runs=pending_runs,
        triggers=tuple(triggers),
        unhealthy_connectors=tuple(
            sorted(
                {
                    step["connector"]
                    for step in workflow.steps
                    if health.get(step["connector"]) is not Health.OK
                }
            )
        ),
    )


class _PendingRun(Protocol):
    """A pending run as a glance shows it: an ORM `Run` or a `lookups.PendingRow`."""

    @property
    def id(self) -> str: ...
    @property
    def requested_by(self) -> str | None: ...
    @property
    def requested_at(self) -> datetime: ...
    @property
    def approvals(self) -> int: ...
    @property
    def required_approvals(self) -> int: ...
    @property
    def slack_channel(self) -> str | None: ...
    @property
    def slack_ts(self) -> str | None: ...


def _pending(
    run: _PendingRun,
    workspace_key: str,
    approvals_channel: str,
    workflow: Workflow | WorkflowRow,
) -> PendingView:
    return PendingView(
        run_id=run.id,
        workspace_key=workspace_key,
        workflow_key=workflow.key,
        workflow_name=workflow.name,
        requested_by=run.requested_by,
        requested_at=run.requested_at,
        approvals=run.approvals,
        required_approvals=run.required_approvals,
        channel=run.slack_channel or approvals_channel,
        slack_ts=run.slack_ts,
    )


async def waiting_for(
    ctx: Context, user: str, workspace_key: str | None = None, *, team_id: str | None = None
) -> list[PendingView]:
    """Pending runs `user` may still approve: in the workspaces where they are a member or a
    named reviewer, not yet decided by them, not their own unless self-approval is allowed.
    `team_id` (distributed mode) keeps to the workspaces bound to that Slack team."""
    async with ctx.db.reading() as session:
        rows = await run_store.reviewable_by(session, user, workspace_key, team_id)
    waiting = []
    for run, workspace, workflow, is_member in rows:
        try:
            check_reviewer(
                user,
                Verdict.APPROVE,
                requester=run.requested_by,
                named_reviewers=run.reviewers,
                is_member=is_member,
                allow_self_approval=workspace.allow_self_approval,
            )
        except Forbidden:
            continue
        waiting.append(_pending(run, workspace.key, workspace.approvals_channel, workflow))
    return waiting


async def homes_for(
    ctx: Context, user: str, *, team_id: str | None = None, limit: int | None = None
) -> tuple[list[HomeSection], int]:
    """The workspaces `user` is a member of, as App Home shows them: the first `limit` by key
    (all without one), and how many there are in all; with `team_id` (distributed mode),
    only those bound to that Slack team. A section is read only for a workspace shown."""
    async with ctx.db.reading() as session:
        theirs = [
            w
            for w in await workspace_store.of_member(session, user)
            if team_id is None or w.slack_team_id == team_id
        ]
        shown = theirs if limit is None else theirs[:limit]
        return [await _home_in(session, w) for w in shown], len(theirs)


async def _home_in(session: AsyncSession, workspace: Workspace) -> HomeSection:
    """Its workflows listed as `/trame workflows` lists them, its runs counted: no more
    workflows read with ten thousand than with ten. The grants no step needs are judged only
    for the connectors shown, those needing attention, by the database over the steps (as
    `/trame connectors` judges them)."""
    connectors = await connector_store.list_for(session, workspace.id)
    unhealthy = [c for c in connectors if c.health is not Health.OK]
    flagged = (
        await scope_service.over_privileged_in(session, workspace.id, unhealthy)
        if unhealthy
        else {}
    )
    return HomeSection(
        workspace_name=workspace.name,
        listing=await _listing_in(session, workspace.id, {c.key: c.health for c in connectors}),
        unhealthy=_connector_lines(unhealthy, flagged),
        pending_runs=await run_store.pending_count(session, workspace.id),
        audit_head=(await audit_store.head(session, workspace.id)).hash,
    )

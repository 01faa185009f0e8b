"""Connector alerts you can act on: raise them, remember their message, and pause (or resume)
the workflows that use the connector from their buttons, re-checking every click. The command
line and the API act through the same two steps (`_pause`, `_resume`), naming the alert by its
id or by its connector instead of by a button; the alert's message is updated either way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.actors import Actor
from trame_bot.domain.alerts import AlertTarget, AlertView, AlertWorkflow
from trame_bot.domain.enums import Health, Role, Status
from trame_bot.errors import Conflict, Forbidden, InvalidInput, InvalidTransition, NotFound
from trame_bot.services.access import require
from trame_bot.services.context import Context
from trame_bot.services.outbox import Kind, enqueue
from trame_bot.services.workflow_status import change_status_in
from trame_bot.store import alerts as store
from trame_bot.store import connectors as connector_store
from trame_bot.store import runs as run_store
from trame_bot.store import workflows as workflow_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.models import Connector, ConnectorAlert, Workflow, Workspace

NEEDS_ATTENTION, RECOVERED = store.NEEDS_ATTENTION, store.RECOVERED


class AlreadyActed(Conflict):
    """A second (or concurrent) click: someone acted from this alert first."""

    def __init__(self, alert: ConnectorAlert) -> None:
        verb = "paused" if alert.event == NEEDS_ATTENTION else "resumed"
        at = alert.acted_at.strftime("%Y-%m-%d %H:%M UTC") if alert.acted_at else "earlier"
        super().__init__(f"this was already done: {verb} by {alert.acted_by} at {at}")
        self.acted_by = alert.acted_by
        self.acted_at = alert.acted_at
        self.verb = verb


@dataclass(frozen=True)
class Acted:
    workflows: tuple[AlertWorkflow, ...]
    connector_health: Health
    alert_id: int
    """The alert acted from: the outage alert (pause) or the recovery notice (resume)."""
    connector: str


async def raise_alert(
    session: AsyncSession,
    ctx: Context,
    workspace: Workspace,
    connector: Connector,
    event: str,
    data: dict[str, Any],
) -> None:
    """Record the alert and post it in the ops channel, inside the caller's transaction."""
    outage = await store.latest_outage(session, connector.id) if event == RECOVERED else None
    alert = ConnectorAlert(
        workspace_id=workspace.id,
        connector_id=connector.id,
        event=event,
        outage_id=outage.id if outage else None,
        data=data,
        channel=workspace.alerts_channel,
        created_at=ctx.clock.now(),
    )
    session.add(alert)
    await session.flush()
    await enqueue(
        session,
        ctx,
        workspace,
        Kind.SLACK_POST,
        channel=workspace.alerts_channel,
        event=event,
        data=data,
        alert_id=alert.id,
    )


async def alert_view(ctx: Context, alert_id: int) -> tuple[AlertView, str, str | None]:
    """What the alert shows now, its channel and its message ts (None until posted)."""
    async with ctx.db.reading() as session:
        alert = await store.get(session, alert_id)
        if alert is None:
            raise NotFound(f"no connector alert {alert_id}")
        return await _view(session, alert), alert.channel, alert.slack_ts


async def list_alerts(
    ctx: Context, key: str, connector_key: str | None = None, limit: int = 50
) -> list[AlertView]:
    """The workspace's connector alerts (of one connector, or all), newest first."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        connector = (
            await connector_store.get(session, workspace.id, connector_key.strip().lower())
            if connector_key
            else None
        )
        found = await store.list_for(
            session, workspace.id, connector.id if connector else None, limit
        )
        return [await _view(session, alert) for alert in found]


async def workspace_alert(ctx: Context, key: str, alert_id: int) -> AlertView:
    """One alert of the workspace as it stands now (another workspace's is not found)."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        alert, _ = await _target(session, workspace, AlertTarget(alert_id=alert_id))
        return await _view(session, alert)


async def _view(session: AsyncSession, alert: ConnectorAlert) -> AlertView:
    connector = await session.get(Connector, alert.connector_id)
    assert connector is not None
    to_resume: tuple[AlertWorkflow, ...] = ()
    paused_from_outage = False
    if alert.event == RECOVERED and alert.outage_id is not None:
        outage = await store.get(session, alert.outage_id)
        if outage is not None and outage.acted_at is not None:
            paused_from_outage = bool(outage.acted_on)
            to_resume = _listed(await _still_paused(session, outage))
    return AlertView(
        alert_id=alert.id,
        event=alert.event,
        connector=connector.key,
        data=dict(alert.data),
        acted_by=alert.acted_by,
        acted_at=alert.acted_at,
        acted_on=tuple(
            AlertWorkflow(w["key"], w["name"], w.get("before", "")) for w in alert.acted_on or []
        ),
        to_resume=to_resume,
        paused_from_outage=paused_from_outage,
        raised_at=alert.created_at,
        outage_id=alert.outage_id,
    )


async def record_alert_posted(ctx: Context, alert_id: int, channel: str, ts: str) -> bool:
    async with ctx.db.transaction() as session:
        return await store.record_posted(session, alert_id, channel, ts)


async def pause_affected(
    ctx: Context, key: str, alert_id: int, connector_key: str, actor: Actor
) -> Acted:
    """From the alert's button, whose value names the alert and its connector."""
    async with ctx.db.transaction() as session:
        workspace, alert, connector = await _alert_of(session, key, alert_id, connector_key)
        return await _pause(session, ctx, workspace, alert, connector, actor)


async def pause_affected_at(ctx: Context, key: str, target: AlertTarget, actor: Actor) -> Acted:
    """From the command line or the API: the alert of an id, or the connector's latest
    "needs attention" alert (a later alert of the same connector is a later outage)."""
    async with ctx.db.transaction() as session:
        workspace = await workspace_store.get(session, key)
        alert, connector = await _target(session, workspace, target)
        return await _pause(session, ctx, workspace, alert, connector, actor)


async def _pause(
    session: AsyncSession,
    ctx: Context,
    workspace: Workspace,
    alert: ConnectorAlert,
    connector: Connector,
    actor: Actor,
) -> Acted:
    """Pause every not-yet-paused workflow that uses the alert's connector, in the caller's
    transaction.

    Allowed after the connector recovered too: pulling the brake is never refused for being
    late (the recovery notice then offers to resume them)."""
    role = await require(session, workspace, actor, Role.MEMBER, "pausing workflows")
    if alert.event != NEEDS_ATTENTION:
        # A conflict with the alert's kind, not a malformed request: the API answers 409.
        raise InvalidTransition(
            f"alert #{alert.id} is a recovery notice: only a “needs attention” alert "
            "pauses workflows"
        )
    alert = await _locked_unacted(session, alert)
    error = str(alert.data.get("error") or connector.last_error or connector.health.value)
    reason = f"connector {connector.key} needs attention: {error}"[:2000]
    paused: list[dict[str, str]] = []
    to_pause = [
        w
        for w in await _locked_users(session, workspace, connector.key)
        if w.status is not Status.PAUSED
    ]
    # Lock order: the workflows, then their runs, then the audit head. The first pause takes
    # the head, so every pending run is locked before it: a decision holding the second
    # workflow's run while it waits for the head would deadlock with us. (No new pending run
    # appears meanwhile: run requests wait for the workflows' locks.)
    for workflow in to_pause:
        await run_store.pending_of_workflow(session, workflow.id, lock=True)
    for workflow in to_pause:
        before = workflow.status.value
        await change_status_in(
            session, ctx, workspace, workflow, Status.PAUSED, actor, role, reason=reason
        )
        paused.append({"key": workflow.key, "name": workflow.name, "before": before})
    # Read after the pauses: "unchanged since" compares each workflow's updated_at to it.
    await _acted(session, alert, actor, ctx.clock.now(), paused)
    await _update(session, ctx, workspace, alert.id)
    recovery = await store.recovery_of(session, alert.id)
    if recovery is not None:  # paused after the recovery: its notice now offers to resume
        await _update(session, ctx, workspace, recovery.id)
    return Acted(_listed_dicts(paused), connector.health, alert.id, connector.key)


async def resume_paused(
    ctx: Context, key: str, alert_id: int, connector_key: str, actor: Actor
) -> Acted:
    """From the recovery notice's button, whose value names the notice and its connector."""
    async with ctx.db.transaction() as session:
        workspace, alert, connector = await _alert_of(session, key, alert_id, connector_key)
        role = await require(session, workspace, actor, Role.ADMIN, "resuming workflows")
        return await _resume(session, ctx, workspace, alert, connector, actor, role)


async def resume_at(ctx: Context, key: str, target: AlertTarget, actor: Actor) -> Acted:
    """From the command line or the API. The target names the outage (its alert's id, or its
    connector for the latest one) or its recovery notice's id: either way the workflows paused
    from that outage are resumed, through its recovery notice, which records who did it."""
    async with ctx.db.transaction() as session:
        workspace = await workspace_store.get(session, key)
        alert, connector = await _target(session, workspace, target)
        role = await require(session, workspace, actor, Role.ADMIN, "resuming workflows")
        if alert.event == NEEDS_ATTENTION:
            recovery = await store.recovery_of(session, alert.id)
            if recovery is None:  # no recovery notice: the connector has not recovered since
                _refuse_unless_healthy(connector)
                raise InvalidTransition(
                    f"alert #{alert.id} has no recovery notice: nothing to resume from it"
                )
            alert = recovery
        return await _resume(session, ctx, workspace, alert, connector, actor, role)


async def _resume(
    session: AsyncSession,
    ctx: Context,
    workspace: Workspace,
    alert: ConnectorAlert,
    connector: Connector,
    actor: Actor,
    role: Role,
) -> Acted:
    """From a recovery notice: resume exactly the workflows paused from the outage alert and not
    changed since, each to the status it had; refused while the connector is unhealthy."""
    if alert.event != RECOVERED:
        raise InvalidTransition(
            f"alert #{alert.id} is a “needs attention” alert: only a recovery notice resumes "
            "workflows"
        )
    _refuse_unless_healthy(connector)
    alert = await _locked_unacted(session, alert)
    outage = await store.get(session, alert.outage_id) if alert.outage_id else None
    resumed: list[dict[str, str]] = []
    if outage is not None and outage.acted_at is not None:
        for workflow in await _still_paused(session, outage, lock=True):
            before = workflow.status_before_pause or Status.DRAFT
            await change_status_in(session, ctx, workspace, workflow, before, actor, role)
            resumed.append({"key": workflow.key, "name": workflow.name, "before": before.value})
    if not resumed:
        raise InvalidTransition(
            "no workflow paused from the alert is still paused unchanged: nothing to resume"
        )
    await _acted(session, alert, actor, ctx.clock.now(), resumed)
    await _update(session, ctx, workspace, alert.id)
    return Acted(_listed_dicts(resumed), connector.health, alert.id, connector.key)


def _refuse_unless_healthy(connector: Connector) -> None:
    if connector.health is not Health.OK:
        raise InvalidTransition(
            f"connector {connector.key} is {connector.health.value} again "
            f"({connector.last_error or 'no detail'}): resume once it is healthy"
        )


async def _target(
    session: AsyncSession, workspace: Workspace, target: AlertTarget
) -> tuple[ConnectorAlert, Connector]:
    """The alert a command or an API request names, in the workspace only: another
    workspace's alert is not told apart from one that does not exist."""
    connector = (
        await connector_store.find(session, workspace.id, target.connector)
        if target.connector is not None
        else None
    )
    if connector is not None:
        latest = await store.latest_outage(session, connector.id)
        if latest is None:
            raise NotFound(f"connector {connector.key} has had no “needs attention” alert")
        return latest, connector
    alert = await store.get(session, target.alert_id) if target.alert_id is not None else None
    if alert is None or alert.workspace_id != workspace.id:
        if target.alert_id is None:
            raise NotFound(f"no connector {target.connector!r} in workspace {workspace.key}")
        if target.connector is None:
            raise NotFound(f"no connector alert #{target.alert_id} in workspace {workspace.key}")
        raise NotFound(f"no connector or alert {target.connector!r} in workspace {workspace.key}")
    found = await session.get(Connector, alert.connector_id)
    assert found is not None
    return alert, found


async def _alert_of(
    session: AsyncSession, key: str, alert_id: int, connector_key: str
) -> tuple[Workspace, ConnectorAlert, Connector]:
    """The alert a button names, refused unless it and its connector are the workspace's own
    (a button's value is untrusted)."""
    workspace = await workspace_store.get(session, key)
    alert = await store.get(session, alert_id)
    connector = await session.get(Connector, alert.connector_id) if alert else None
    if alert is None or connector is None:
        raise NotFound("this alert no longer exists")
    if alert.workspace_id != workspace.id or connector.workspace_id != workspace.id:
        raise Forbidden("this alert belongs to another workspace")
    if connector.key != connector_key:
        raise InvalidInput("this button does not match its alert's connector")
    return workspace, alert, connector


async def _locked_unacted(session: AsyncSession, alert: ConnectorAlert) -> ConnectorAlert:
    """Lock the alert (two clicks at once: the second waits here, then sees the first's)."""
    locked = await store.get(session, alert.id, lock=True)
    assert locked is not None
    await session.refresh(locked)
    if locked.acted_at is not None:
        raise AlreadyActed(locked)
    return locked


async def _acted(
    session: AsyncSession,
    alert: ConnectorAlert,
    actor: Actor,
    now: datetime,
    workflows: list[dict[str, str]],
) -> None:
    if not await store.mark_acted(
        session, alert.id, actor.user or actor.audit_name, now, workflows
    ):
        await session.refresh(alert)
        raise AlreadyActed(alert)


async def _locked_users(
    session: AsyncSession, workspace: Workspace, connector: str
) -> list[Workflow]:
    """The workflows using the connector, locked in key order (always the same order, so two
    transactions locking several never deadlock)."""
    found = await workflow_store.using_connector(session, workspace.id, connector)
    return [
        await workflow_store.get(session, workspace.id, w.key, lock=True)
        for w in sorted(found, key=lambda w: w.key)
    ]


async def _still_paused(
    session: AsyncSession, outage: ConnectorAlert, *, lock: bool = False
) -> list[Workflow]:
    """The workflows paused from the outage alert that nobody changed since (still paused, not
    touched after the pause: resumed and paused again, or edited, means someone took over)."""
    assert outage.acted_at is not None
    found = []
    for entry in sorted(outage.acted_on or [], key=lambda w: str(w["key"])):
        workflow = await workflow_store.find(session, outage.workspace_id, entry["key"], lock=lock)
        if (
            workflow is not None
            and workflow.key == entry["key"]
            and workflow.status is Status.PAUSED
            and workflow.updated_at <= outage.acted_at
        ):
            found.append(workflow)
    return found


async def _update(session: AsyncSession, ctx: Context, workspace: Workspace, alert_id: int) -> None:
    await enqueue(session, ctx, workspace, Kind.SLACK_ALERT, alert_id=alert_id)


def _listed(workflows: list[Workflow]) -> tuple[AlertWorkflow, ...]:
    """Paused workflows with the status a resume returns each to (what a reader wants)."""
    return tuple(
        AlertWorkflow(w.key, w.name, (w.status_before_pause or Status.DRAFT).value)
        for w in workflows
    )


def _listed_dicts(workflows: list[dict[str, str]]) -> tuple[AlertWorkflow, ...]:
    return tuple(AlertWorkflow(w["key"], w["name"], w["before"]) for w in workflows)

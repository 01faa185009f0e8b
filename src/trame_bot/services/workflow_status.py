"""A workflow's status changes: each is checked against the transition rules, audited and
announced in the approvals channel in one transaction; a pause cancels the pending runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, Status
from trame_bot.domain.roles import check_at_least
from trame_bot.domain.rollback import RollbackAction, RollbackPlan, check_triggers
from trame_bot.domain.transitions import GoLiveEvidence, check_status_change
from trame_bot.errors import InvalidInput, InvalidTransition
from trame_bot.services import runs as run_service
from trame_bot.services.access import workflow_with_role
from trame_bot.services.context import Context
from trame_bot.services.naming import Named, named_in_channel
from trame_bot.services.outbox import Kind, enqueue
from trame_bot.store import audit as audit_store
from trame_bot.store import runs as run_store
from trame_bot.store import workflows as store
from trame_bot.store.models import Workflow, Workspace


@dataclass(frozen=True)
class SignOff:
    by: str
    evidence: str


async def change_status(
    ctx: Context,
    key: str,
    ref: str,
    target: Status,
    actor: Actor,
    *,
    reason: str | None = None,
    sign_off: SignOff | None = None,
    rollback_plan: RollbackPlan | str | None = None,
) -> Workflow:
    """Move a workflow to `target`. Pausing cancels its pending runs in the same transaction."""
    async with ctx.db.transaction() as session:
        workspace, workflow, role = await _locked_for_status(session, key, ref, actor)
        await change_status_in(
            session,
            ctx,
            workspace,
            workflow,
            target,
            actor,
            role,
            reason=reason,
            sign_off=sign_off,
            rollback_plan=rollback_plan,
        )
    return workflow


async def change_status_in(
    session: AsyncSession,
    ctx: Context,
    workspace: Workspace,
    workflow: Workflow,
    target: Status,
    actor: Actor,
    role: Role,
    *,
    reason: str | None = None,
    sign_off: SignOff | None = None,
    rollback_plan: RollbackPlan | str | None = None,
) -> None:
    """`change_status` inside the caller's transaction, for a workflow it has locked and an
    actor whose `role` it has resolved: several workflows can change in one transaction."""
    now = ctx.clock.now()
    current = workflow.status
    go_live = None
    plan = _as_plan(rollback_plan)
    if target is Status.LIVE and current is Status.PILOT:
        go_live = GoLiveEvidence(
            signed_off_by=sign_off.by if sign_off else None,
            sign_off_evidence=sign_off.evidence if sign_off else None,
            rollback_plan=plan.describe() if plan else None,
            production=workflow.production,
            approved_pilot_runs_of_current_plan=await run_store.approved_pilot_runs(
                session, workflow.id, workflow.fingerprint
            ),
        )
    check_status_change(
        current,
        target,
        role,
        status_before_pause=workflow.status_before_pause,
        reason=reason,
        go_live=go_live,
    )
    if go_live is not None and plan is not None:
        check_triggers(
            plan, [t.key for t in (await store.with_triggers(session, workflow)).triggers]
        )
    data: dict[str, Any] = {"before": current.value, "after": target.value}
    # Lock order: workflow, then its runs, then the audit head (see pending_of_workflow).
    to_cancel = (
        await run_store.pending_of_workflow(session, workflow.id, lock=True)
        if target is Status.PAUSED
        else []
    )
    if target is Status.PAUSED:
        workflow.status_before_pause = current
    elif current is Status.PAUSED:
        workflow.status_before_pause = None
    if go_live is not None and sign_off is not None and plan is not None:
        workflow.signed_off_by, workflow.sign_off_evidence = sign_off.by, sign_off.evidence
        workflow.rollback_plan = plan.stored()
        data.update(
            signed_off_by=sign_off.by,
            sign_off_evidence=sign_off.evidence,
            rollback_plan=plan.as_dict(),
        )
    workflow.status, workflow.updated_at = target, now
    await audit_store.append(
        session,
        workspace,
        at=now,
        actor=actor.audit_name,
        action="workflow.status_changed",
        entity_type="workflow",
        entity_id=workflow.key,
        summary=f"workflow {workflow.key}: {current} → {target}",
        data=data,
        reason=(reason or "").strip() or None,
    )
    for run in to_cancel:
        await run_service.close_run(
            session,
            ctx,
            workspace,
            workflow,
            run.id,
            "cancelled",
            actor,
            reason=f"workflow paused: {reason}",
        )
    await announce(
        session,
        ctx,
        workspace,
        workflow,
        actor,
        "workflow.status_changed",
        before=current.value,
        after=target.value,
        reason=reason,
    )


async def announce(
    session: AsyncSession,
    ctx: Context,
    workspace: Workspace,
    workflow: Workflow,
    actor: Actor,
    event: str,
    **data: Any,
) -> None:
    """A change to `workflow` told in its workspace's approvals channel, by the outbox once the
    transaction commits (`slack.blocks.notices` draws it): who changed it, and `data`."""
    await enqueue(
        session,
        ctx,
        workspace,
        Kind.SLACK_POST,
        channel=workspace.approvals_channel,
        event=event,
        data={
            "workflow": workflow.key,
            "name": workflow.name,
            "actor": actor.audit_name,
            "user": actor.user,
            **data,
        },
    )


def _as_plan(given: RollbackPlan | str | None) -> RollbackPlan | None:
    """A free-text plan (the API's and CLI's older form) is notes to a pause."""
    if isinstance(given, str):
        return RollbackPlan(RollbackAction.PAUSE, notes=given.strip()) if given.strip() else None
    return given


def check_can_go_live(workflow: Workflow, role: Role) -> None:
    """What a go-live form can do nothing about: the role and the status (the evidence it
    asks for is stood in for here)."""
    check_status_change(
        workflow.status,
        Status.LIVE,
        role,
        status_before_pause=workflow.status_before_pause,
        go_live=GoLiveEvidence(
            "-", "-", "-", production=False, approved_pilot_runs_of_current_plan=1
        ),
    )


async def resume(ctx: Context, key: str, ref: str, actor: Actor) -> Workflow:
    """Back to the status the workflow had before it was paused, read under the same lock."""
    async with ctx.db.transaction() as session:
        workspace, workflow, role = await _locked_for_status(session, key, ref, actor)
        await _resume_in(session, ctx, workspace, workflow, actor, role)
    return workflow


async def _resume_in(
    session: AsyncSession,
    ctx: Context,
    workspace: Workspace,
    workflow: Workflow,
    actor: Actor,
    role: Role,
) -> None:
    if workflow.status is not Status.PAUSED:
        raise InvalidTransition(f"workflow {workflow.key} is {workflow.status}, not paused")
    target = workflow.status_before_pause or Status.DRAFT
    await change_status_in(session, ctx, workspace, workflow, target, actor, role)


async def pause_named(ctx: Context, named: Named, actor: Actor) -> Workflow:
    """`change_status` to paused for the workflow `named`, the words after its name the
    reason: the most urgent command reads what it needs in one statement (`_locked_named`)."""
    async with ctx.db.transaction() as session:
        workspace, workflow, role, rest = await _locked_named(session, ctx, named, actor)
        if not rest:
            raise InvalidInput(f"say why you pause it: `/trame pause {workflow.key} <reason>`")
        await change_status_in(
            session, ctx, workspace, workflow, Status.PAUSED, actor, role, reason=" ".join(rest)
        )
    return workflow


async def resume_named(ctx: Context, named: Named, actor: Actor) -> Workflow:
    """`resume` for the workflow `named`, in one read as `pause_named`."""
    async with ctx.db.transaction() as session:
        workspace, workflow, role, _ = await _locked_named(session, ctx, named, actor)
        await _resume_in(session, ctx, workspace, workflow, actor, role)
    return workflow


async def _locked_named(
    session: AsyncSession, ctx: Context, named: Named, actor: Actor
) -> tuple[Workspace, Workflow, Role, tuple[str, ...]]:
    """`_locked_for_status` for a workflow `named`, with the words after its name: one
    statement resolves channel → workspace → workflow (locked) → role. When it finds none,
    the two reads of `named_in_channel` and `_locked_for_status` say why (the channel is not
    bound, no workflow has that name) or find a name SQLite could not lowercase."""
    found = await store.named_with_role(
        session, named.team, named.channel, actor.user or "", named.words
    )
    if found is None:
        key, ref, rest = await named_in_channel(ctx, named, actor.user or "")
        return (*await _locked_for_status(session, key, ref, actor), rest)
    workspace, workflow, role, rest = found
    role = actor.authority if actor.user is None else role
    return workspace, workflow, _at_least_member(role), rest


async def _locked_for_status(
    session: AsyncSession, key: str, ref: str, actor: Actor
) -> tuple[Workspace, Workflow, Role]:
    """The workspace, the workflow locked for a status change, and the actor's role, in one
    read."""
    workspace, workflow, role = await workflow_with_role(session, key, ref, actor, lock=True)
    return workspace, workflow, _at_least_member(role)


def _at_least_member(role: Role | None) -> Role:
    """Anyone in the workspace may pull the brake; the transition rules check the rest."""
    return check_at_least(role, Role.MEMBER, "changing a workflow's status")

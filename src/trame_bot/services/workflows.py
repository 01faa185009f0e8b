"""Saving workflows, changing their status and toggling their triggers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.documents import WorkflowDoc
from trame_bot.domain.actors import Actor
from trame_bot.domain.changes import changed_fields
from trame_bot.domain.enums import Role, Status
from trame_bot.domain.plan import Step, connectors_of, fingerprint, steps_from_dicts
from trame_bot.domain.roles import check_at_least, check_trigger_toggle
from trame_bot.domain.rollback import RollbackAction, RollbackPlan, check_triggers
from trame_bot.domain.scopes import write_refusals
from trame_bot.domain.transitions import GoLiveEvidence, check_status_change
from trame_bot.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from trame_bot.services import runs as run_service
from trame_bot.services.access import require, workflow_with_role
from trame_bot.services.context import Context
from trame_bot.services.naming import Named, named_in_channel
from trame_bot.services.outbox import Kind, enqueue
from trame_bot.store import audit as audit_store
from trame_bot.store import connectors as connector_store
from trame_bot.store import runs as run_store
from trame_bot.store import workflows as store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.lookups import WorkflowRow
from trame_bot.store.models import Trigger, Workflow, Workspace

CREATABLE = (Status.DRAFT, Status.PILOT)


@dataclass(frozen=True)
class Applied:
    workflow: Workflow
    created: bool
    changed: list[str]


@dataclass(frozen=True)
class SignOff:
    by: str
    evidence: str


def _definition(workflow: Workflow) -> dict[str, Any]:
    return {
        "name": workflow.name,
        "production": workflow.production,
        "required_approvals": workflow.required_approvals,
        "reviewers": list(workflow.reviewers),
        "prompt": workflow.prompt,
        "required_details": dict(workflow.required_details),
        "steps": list(workflow.steps),
        "triggers": [{"key": t.key, "kind": t.kind.value} for t in workflow.triggers],
    }


def plan_of(workflow: Workflow | WorkflowRow) -> tuple[Step, ...]:
    return steps_from_dicts(workflow.steps)


async def apply_workflow(ctx: Context, key: str, doc: WorkflowDoc, actor: Actor) -> Applied:
    """Create or change a workflow from its document; re-applying the same one is a no-op.

    The version goes up only when the plan (what the fingerprint covers) changes, so an
    approval stays bound to what it saw. `status` is used at creation only (draft or pilot);
    later changes go through `change_status`. Existing triggers keep their on/off state:
    re-enabling one needs an admin (`set_trigger`), not a re-applied file.
    """
    now = ctx.clock.now()
    steps = [step.model_dump(mode="json") for step in doc.steps]
    try:
        async with ctx.db.transaction() as session:
            workspace = await workspace_store.get(session, key)
            await require(session, workspace, actor, Role.MEMBER, "saving workflows")
            health = await connector_store.health_of(
                session, workspace.id, (s.connector for s in doc.steps)
            )
            foreign = {
                f"steps.{i}.connector": f"{step.connector!r} is not a connector of this workspace"
                for i, step in enumerate(doc.steps)
                if step.connector not in health
            }
            if foreign:
                first = next(iter(foreign.values()))
                raise InvalidInput(f"workflow {doc.key}: connector {first}", foreign)
            scopes = {
                c.key: c.scopes for c in await connector_store.list_for(session, workspace.id)
            }
            refused = write_refusals([(s.connector, s.access) for s in doc.steps], scopes)
            if refused:
                where, why = next(iter(refused.items()))
                raise InvalidInput(f"workflow {doc.key}: {where}: {why}", refused)
            workflow = await store.find(session, workspace.id, doc.key, lock=True)
            if workflow is not None and workflow.key != doc.key:
                workflow = None  # matched another workflow by name: this is a new key
            created = workflow is None
            if workflow is None:
                if doc.status not in CREATABLE:
                    raise InvalidInput(
                        f"a new workflow starts as draft or pilot, not {doc.status}",
                        {"status": "draft or pilot"},
                    )
                workflow = Workflow(
                    workspace_id=workspace.id,
                    key=doc.key,
                    status=doc.status,
                    version=1,
                    created_at=now,
                    triggers=[],
                )
                session.add(workflow)
                before = None
                old_plan = None
            else:
                before = _definition(workflow)
                old_plan = fingerprint(plan_of(workflow), 0)
            workflow.name, workflow.production = doc.name, doc.production
            workflow.required_approvals, workflow.reviewers = (
                doc.required_approvals,
                list(doc.reviewers),
            )
            workflow.prompt, workflow.required_details = doc.prompt, dict(doc.required_details)
            workflow.steps = steps
            _sync_triggers(workflow, doc)
            after = _definition(workflow)
            changed = changed_fields(before, after)
            if not changed:
                return Applied(workflow, False, [])
            if old_plan is not None and fingerprint(plan_of(workflow), 0) != old_plan:
                workflow.version += 1
            workflow.fingerprint = fingerprint(plan_of(workflow), workflow.version)
            workflow.updated_at = now
            await session.flush()
            await audit_store.append(
                session,
                workspace,
                at=now,
                actor=actor.audit_name,
                action="workflow.created" if created else "workflow.changed",
                entity_type="workflow",
                entity_id=doc.key,
                summary=f"workflow {doc.key} "
                + (f"created as {workflow.status}" if created else f"changed: {', '.join(changed)}")
                + f" (version {workflow.version})",
                data={"before": before, "after": after, "version": workflow.version},
            )
    except IntegrityError:
        raise Conflict(
            f"workflow {doc.key!r} was saved by someone else at the same time; try again"
        ) from None
    return Applied(workflow, created, changed)


def _sync_triggers(workflow: Workflow, doc: WorkflowDoc) -> None:
    existing = {t.key: t for t in workflow.triggers}
    kept = []
    for spec in doc.triggers:
        trigger = existing.get(spec.key)
        if trigger is None:
            trigger = Trigger(key=spec.key, kind=spec.kind, enabled=spec.enabled)
        trigger.kind = spec.kind
        kept.append(trigger)
    workflow.triggers = kept


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
    await enqueue(
        session,
        ctx,
        workspace,
        Kind.SLACK_POST,
        channel=workspace.approvals_channel,
        event="workflow.status_changed",
        data={
            "workflow": workflow.key,
            "name": workflow.name,
            "before": current.value,
            "after": target.value,
            "actor": actor.audit_name,
            "user": actor.user,
            "reason": reason,
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


async def set_trigger(
    ctx: Context, key: str, ref: str, trigger_key: str, enabled: bool, actor: Actor
) -> Trigger:
    async with ctx.db.transaction() as session:
        workspace = await workspace_store.get(session, key)
        workflow = await store.get(session, workspace.id, ref, lock=True)
        role = await require(session, workspace, actor, Role.MEMBER, "changing triggers")
        return await set_trigger_in(
            session, ctx, workspace, workflow, trigger_key, enabled, actor, role
        )


async def set_trigger_in(
    session: AsyncSession,
    ctx: Context,
    workspace: Workspace,
    workflow: Workflow,
    trigger_key: str,
    enabled: bool,
    actor: Actor,
    role: Role,
) -> Trigger:
    """`set_trigger` inside the caller's transaction, for a workflow it has locked."""
    check_trigger_toggle(role, enabled)
    trigger = next((t for t in workflow.triggers if t.key == trigger_key.lower()), None)
    if trigger is None:
        known = ", ".join(t.key for t in workflow.triggers) or "none"
        raise NotFound(f"workflow {workflow.key} has no trigger {trigger_key!r} (it has: {known})")
    if trigger.enabled == enabled:
        return trigger
    trigger.enabled = enabled
    word = "enabled" if enabled else "disabled"
    await audit_store.append(
        session,
        workspace,
        at=ctx.clock.now(),
        actor=actor.audit_name,
        action="workflow.trigger_changed",
        entity_type="workflow",
        entity_id=workflow.key,
        summary=f"workflow {workflow.key}: trigger {trigger.key} {word}",
        data={"trigger": trigger.key, "before": not enabled, "after": enabled},
    )
    return trigger


async def list_workflows(ctx: Context, key: str) -> Sequence[Workflow]:
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        return await store.list_for(session, workspace.id)


async def get_workflow(ctx: Context, key: str, ref: str) -> Workflow:
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        return await store.get(session, workspace.id, ref)


def connectors_used(workflow: Workflow) -> list[str]:
    return connectors_of(plan_of(workflow))

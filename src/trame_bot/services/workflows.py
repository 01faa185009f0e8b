"""Saving and reading workflows, and toggling their triggers."""

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
from trame_bot.domain.roles import check_trigger_toggle
from trame_bot.domain.scopes import write_refusals
from trame_bot.errors import Conflict, InvalidInput, NotFound
from trame_bot.services.access import require
from trame_bot.services.context import Context
from trame_bot.store import audit as audit_store
from trame_bot.store import connectors as connector_store
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
    later changes go through `workflow_status.change_status`. Existing triggers keep their
    on/off state: re-enabling one needs an admin (`set_trigger`), not a re-applied file.
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

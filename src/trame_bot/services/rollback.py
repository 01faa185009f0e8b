"""Carrying out a workflow's rollback plan: pause it, or disable the triggers the plan names."""

from __future__ import annotations

from dataclasses import dataclass

from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, Status
from trame_bot.domain.rollback import RollbackAction, RollbackPlan, read_stored
from trame_bot.errors import InvalidTransition
from trame_bot.services.access import require
from trame_bot.services.context import Context
from trame_bot.services.workflow_status import announce, change_status_in
from trame_bot.services.workflows import set_trigger_in
from trame_bot.store import audit as audit_store
from trame_bot.store import workflows as store
from trame_bot.store import workspaces as workspace_store

ROLLBACK = "rollback"


@dataclass(frozen=True)
class RolledBack:
    workflow_key: str
    workflow_name: str
    plan: RollbackPlan
    disabled: tuple[str, ...]
    """The triggers turned off (a trigger-disabling plan)."""
    missing: tuple[str, ...]
    """Triggers the plan names that the workflow no longer has."""


async def roll_back(
    ctx: Context, key: str, ref: str, actor: Actor, *, why: str | None = None
) -> RolledBack:
    """Carry out the plan recorded at go-live, in one transaction, audited as
    `workflow.rolled_back` beside the status or trigger events it causes. A workflow without a
    structured plan (none, or free text from before) is paused."""
    now = ctx.clock.now()
    why = (why or "").strip() or None
    async with ctx.db.transaction() as session:
        workspace = await workspace_store.get(session, key)
        workflow = await store.get(session, workspace.id, ref, lock=True)
        role = await require(session, workspace, actor, Role.MEMBER, "rolling back a workflow")
        plan = read_stored(workflow.rollback_plan)
        disabled: list[str] = []
        missing: list[str] = []
        if plan.action is RollbackAction.PAUSE:
            if workflow.status is Status.PAUSED:
                raise InvalidTransition(f"workflow {workflow.key} is already paused")
            reason = f"{ROLLBACK}: {why}" if why else ROLLBACK
            await change_status_in(
                session, ctx, workspace, workflow, Status.PAUSED, actor, role, reason=reason
            )
        else:
            known = {t.key: t for t in workflow.triggers}
            missing = [t for t in plan.triggers if t not in known]
            to_disable = [t for t in plan.triggers if t in known and known[t].enabled]
            if not to_disable:
                raise InvalidTransition(
                    f"the rollback plan's triggers of {workflow.key} are already off "
                    f"({', '.join(plan.triggers)})"
                )
            for trigger in to_disable:
                await set_trigger_in(session, ctx, workspace, workflow, trigger, False, actor, role)
                disabled.append(trigger)
        await audit_store.append(
            session,
            workspace,
            at=now,
            actor=actor.audit_name,
            action="workflow.rolled_back",
            entity_type="workflow",
            entity_id=workflow.key,
            summary=f"workflow {workflow.key} rolled back: {plan.describe()}"
            + ("" if plan.structured else " (no structured plan: paused)"),
            data={
                "plan": plan.as_dict(),
                "structured": plan.structured,
                "disabled": disabled,
                "missing": missing,
            },
            reason=why,
        )
        if plan.action is RollbackAction.DISABLE_TRIGGERS:
            await announce(
                session,
                ctx,
                workspace,
                workflow,
                actor,
                "workflow.rolled_back",
                disabled=disabled,
                reason=why,
            )
        return RolledBack(workflow.key, workflow.name, plan, tuple(disabled), tuple(missing))

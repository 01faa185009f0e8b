"""Closing runs (expiry, cancellation) and reading them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, RunState
from trame_bot.errors import Conflict
from trame_bot.services.access import require
from trame_bot.services.context import Context
from trame_bot.services.outbox import Kind, enqueue
from trame_bot.services.run_outcomes import AlreadyDecided, announce_outcome
from trame_bot.store import audit as audit_store
from trame_bot.store import runs as store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.models import Decision, Run, Workflow, Workspace

EXPIRY_BATCH = 200


async def close_run(
    session: AsyncSession,
    ctx: Context,
    workspace: Workspace,
    workflow: Workflow,
    run_id: str,
    state: str,
    actor: Actor,
    *,
    reason: str | None,
) -> bool:
    """Expire or cancel a pending run inside the caller's transaction; False if it was settled."""
    now = ctx.clock.now()
    final = RunState(state)
    if not await store.close(session, run_id, final, now, by=actor.audit_name, reason=reason):
        return False
    run = await store.find(session, run_id)
    assert run is not None
    await audit_store.append(
        session,
        workspace,
        at=now,
        actor=actor.audit_name,
        action=f"run.{final.value}",
        entity_type="run",
        entity_id=run_id,
        summary=f"run of {workflow.key} {final.value}",
        data={"workflow": workflow.key, "fingerprint": run.fingerprint},
        reason=reason,
    )
    await enqueue(
        session,
        ctx,
        workspace,
        Kind.SLACK_THREAD,
        run_id=run_id,
        event=f"run.{final.value}",
        data={"state": final.value, "reason": reason},
    )
    await enqueue(session, ctx, workspace, Kind.SLACK_CARD, run_id=run_id)
    await announce_outcome(
        session,
        ctx,
        workspace,
        workspace.webhook_url,
        (workflow.key, workflow.name),
        run,
        f"run.{final.value}",
    )
    return True


async def cancel_run(ctx: Context, key: str, run_id: str, actor: Actor, reason: str | None) -> Run:
    async with ctx.db.transaction() as session:
        workspace = await workspace_store.get(session, key)
        run = await store.get_in(session, workspace.id, run_id)
        if actor.user != run.requested_by or actor.user is None:
            await require(session, workspace, actor, Role.MEMBER, "cancelling runs")
        workflow = await session.get(Workflow, run.workflow_id)
        assert workflow is not None
        if not await close_run(
            session, ctx, workspace, workflow, run.id, "cancelled", actor, reason=reason
        ):
            raise AlreadyDecided(run)
        refreshed = await store.find(session, run.id)
        assert refreshed is not None
    return refreshed


async def expire_due_runs(ctx: Context) -> int:
    """Expire every pending run past its TTL; safe with several schedulers running at once."""
    async with ctx.db.reading() as session:
        due = await store.due_for_expiry(session, ctx.clock.now(), EXPIRY_BATCH)
    expired = 0
    for run_id in due:
        async with ctx.db.transaction() as session:
            run = await store.find(session, run_id)
            if run is None or run.state.is_final:
                continue
            workspace = await session.get(Workspace, run.workspace_id)
            workflow = await session.get(Workflow, run.workflow_id)
            assert workspace is not None
            assert workflow is not None
            ttl = timedelta(seconds=workspace.approval_ttl_seconds)
            reason = f"no decision within {ttl}"
            expired += await close_run(
                session, ctx, workspace, workflow, run_id, "expired", Actor.system(), reason=reason
            )
    return expired


async def verify_fingerprint(ctx: Context, key: str, run_id: str, presented: str) -> Run:
    """The engine's last check before it executes: approved, and the plan it will run is the
    one that was approved."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        run = await store.get_in(session, workspace.id, run_id)
    if run.state is not RunState.APPROVED:
        raise Conflict(f"the run is {run.state}, not approved: it must not execute")
    if presented.strip().lower() != run.fingerprint:
        raise Conflict("the plan differs from the approved one: request a new run for this plan")
    return run


async def get_run(ctx: Context, key: str, run_id: str) -> tuple[Run, Sequence[Decision]]:
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        run = await store.get_in(session, workspace.id, run_id)
        return run, await store.decisions(session, run.id)


async def workflow_key_of(ctx: Context, run: Run) -> str:
    async with ctx.db.reading() as session:
        workflow = await session.get(Workflow, run.workflow_id)
        assert workflow is not None
        return workflow.key

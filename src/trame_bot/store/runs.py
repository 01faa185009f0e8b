"""Runs and the decisions on them. Final states are reached only by conditional updates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from trame_bot.domain.enums import RunState, Status, Verdict
from trame_bot.domain.values import storable
from trame_bot.errors import NotFound
from trame_bot.store.models import Decision, Run, UTCDateTime, Workflow, Workspace


async def find(session: AsyncSession, run_id: str) -> Run | None:
    if not storable(run_id):  # a forged id (a button value, a form's metadata) names no run
        return None
    return await session.get(Run, run_id, populate_existing=True)


async def get_in(session: AsyncSession, workspace_id: int, run_id: str) -> Run:
    """A run of this workspace; another workspace's run is as unknown as a missing one."""
    run = await find(session, run_id)
    if run is None or run.workspace_id != workspace_id:
        raise NotFound(f"no run {run_id!r} in this workspace")
    return run


async def by_idempotency_key(session: AsyncSession, workspace_id: int, key: str) -> Run | None:
    result = await session.execute(
        select(Run).where(Run.workspace_id == workspace_id, Run.idempotency_key == key)
    )
    return result.scalar_one_or_none()


async def decisions(session: AsyncSession, run_id: str) -> Sequence[Decision]:
    result = await session.execute(
        select(Decision).where(Decision.run_id == run_id).order_by(Decision.at, Decision.id)
    )
    return result.scalars().all()


async def decision_of(session: AsyncSession, run_id: str, user: str) -> Decision | None:
    result = await session.execute(
        select(Decision).where(Decision.run_id == run_id, Decision.user == user)
    )
    return result.scalar_one_or_none()


async def pending_of_workflow(
    session: AsyncSession, workflow_id: int, *, lock: bool = False
) -> Sequence[Run]:
    """With `lock`, the rows stay locked (PostgreSQL) until the transaction ends, taken in id
    order: take them before the audit chain's head, as every transaction does, or a decision
    holding one run while it waits for the head would deadlock with us."""
    query = select(Run).where(Run.workflow_id == workflow_id, Run.state == RunState.PENDING)
    query = query.order_by(Run.id).with_for_update() if lock else query.order_by(Run.requested_at)
    return (await session.execute(query)).scalars().all()


async def pending_in(session: AsyncSession, workspace_id: int) -> Sequence[Run]:
    result = await session.execute(
        select(Run)
        .where(Run.workspace_id == workspace_id, Run.state == RunState.PENDING)
        .order_by(Run.requested_at)
    )
    return result.scalars().all()


async def due_for_expiry(session: AsyncSession, now: datetime, limit: int) -> Sequence[str]:
    result = await session.execute(
        select(Run.id)
        .where(Run.state == RunState.PENDING, Run.expires_at <= now)
        .order_by(Run.expires_at)
        .limit(limit)
    )
    return result.scalars().all()


async def approved_pilot_runs(session: AsyncSession, workflow_id: int, fingerprint: str) -> int:
    """Approved runs requested in pilot whose plan is exactly `fingerprint` (plan + version):
    a run with overridden steps did not try the workflow's own plan."""
    result = await session.execute(
        select(func.count()).where(
            Run.workflow_id == workflow_id,
            Run.fingerprint == fingerprint,
            Run.state == RunState.APPROVED,
            Run.workflow_status == Status.PILOT,
        )
    )
    return int(result.scalar_one())


async def count_vote(
    session: AsyncSession,
    run: Run,
    verdict: Verdict,
    user: str,
    now: datetime,
    reason: str | None = None,
) -> tuple[RunState, int] | None:
    """Count one verdict in a single conditional UPDATE; None when the run is no longer pending.
    `run` is left as the UPDATE wrote it (from its RETURNING, with no second read).

    On PostgreSQL the UPDATE takes the run's row lock: a concurrent vote waits, then re-checks
    `state = 'pending'` against the committed row, so exactly one vote makes the final outcome.
    """
    values: dict[Any, Any]
    if verdict is Verdict.DECLINE:
        values = {
            Run.state: RunState.DECLINED,
            Run.decided_at: now,
            Run.decided_by: user,
            Run.reason: reason,
        }
    else:
        reached = Run.approvals + 1 >= Run.required_approvals
        values = {
            Run.approvals: Run.approvals + 1,
            Run.state: case((reached, RunState.APPROVED.value), else_=Run.state),
            Run.decided_at: case((reached, literal(now, UTCDateTime())), else_=Run.decided_at),
            Run.decided_by: case((reached, user), else_=Run.decided_by),
        }
    written = (Run.state, Run.approvals, Run.decided_at, Run.decided_by, Run.reason)
    result = await session.execute(
        update(Run)
        .where(Run.id == run.id, Run.state == RunState.PENDING)
        .values(values)
        .returning(*written)
        .execution_options(synchronize_session=False)
    )
    row = result.one_or_none()
    if row is None:
        return None
    for column, value in zip(written, row, strict=True):
        set_committed_value(run, column.key, value)
    return RunState(row[0]), int(row[1])


async def close(
    session: AsyncSession,
    run_id: str,
    state: RunState,
    now: datetime,
    *,
    by: str,
    reason: str | None,
) -> bool:
    """Move a pending run to a final state (expired, cancelled); False when it was not pending."""
    result = await session.execute(
        update(Run)
        .where(Run.id == run_id, Run.state == RunState.PENDING)
        .values(state=state, decided_at=now, decided_by=by, reason=reason)
        .returning(Run.id)
        .execution_options(synchronize_session=False)
    )
    return result.one_or_none() is not None


async def pending_with_context(
    session: AsyncSession, workspace_key: str | None = None
) -> Sequence[tuple[Run, Workspace, Workflow]]:
    """Pending runs with their workspace and workflow, oldest first."""
    query = (
        select(Run, Workspace, Workflow)
        .join(Workspace, Workspace.id == Run.workspace_id)
        .join(Workflow, Workflow.id == Run.workflow_id)
        .where(Run.state == RunState.PENDING)
        .order_by(Run.requested_at)
    )
    if workspace_key is not None:
        query = query.where(Workspace.key == workspace_key)
    return [(run, ws, wf) for run, ws, wf in (await session.execute(query)).all()]


async def decided_by(session: AsyncSession, user: str, run_ids: Sequence[str]) -> set[str]:
    """Which of `run_ids` `user` has already decided."""
    if not run_ids:
        return set()
    result = await session.execute(
        select(Decision.run_id).where(Decision.user == user, Decision.run_id.in_(list(run_ids)))
    )
    return set(result.scalars())


async def unreminded(session: AsyncSession, now: datetime) -> Sequence[tuple[Run, Workspace]]:
    """Pending runs not yet reminded about, with their workspace (the delay is per workspace)."""
    result = await session.execute(
        select(Run, Workspace)
        .join(Workspace, Workspace.id == Run.workspace_id)
        .where(Run.state == RunState.PENDING, Run.reminded_at.is_(None), Run.requested_at <= now)
        .order_by(Run.requested_at)
    )
    return [(run, ws) for run, ws in result.all()]


async def mark_reminded(session: AsyncSession, run_id: str, now: datetime) -> bool:
    """True for the one caller that marks it: a reminder is sent once, however many schedulers."""
    result = await session.execute(
        update(Run)
        .where(Run.id == run_id, Run.state == RunState.PENDING, Run.reminded_at.is_(None))
        .values(reminded_at=now)
        .returning(Run.id)
        .execution_options(synchronize_session=False)
    )
    return result.one_or_none() is not None


async def count_pending(session: AsyncSession) -> int:
    result = await session.execute(select(func.count()).where(Run.state == RunState.PENDING))
    return int(result.scalar_one())


async def declined_since(
    session: AsyncSession, workspace_id: int, since: datetime, limit: int
) -> tuple[int, Sequence[tuple[Run, str, Decision | None]]]:
    """Runs declined at or after `since`, oldest first (at most `limit`), with their workflow's
    name and the declining vote (its category), and how many there are in all."""
    where = (
        Run.workspace_id == workspace_id,
        Run.state == RunState.DECLINED,
        Run.decided_at >= since,
    )
    total = (
        await session.execute(select(func.count()).select_from(Run).where(*where))
    ).scalar_one()
    rows = await session.execute(
        select(Run, Workflow.name, Decision)
        .join(Workflow, Workflow.id == Run.workflow_id)
        .outerjoin(
            Decision,
            (Decision.run_id == Run.id)
            & (Decision.user == Run.decided_by)
            & (Decision.verdict == Verdict.DECLINE),
        )
        .where(*where)
        .order_by(Run.decided_at, Run.id)
        .limit(limit)
    )
    return int(total), [(run, str(name), decision) for run, name, decision in rows.all()]

"""Runs: reads, the new run, its closing. Final states are reached only by conditional updates
(deciding a run is `store.decisions`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.enums import RunState, Status, Verdict
from trame_bot.domain.values import storable
from trame_bot.errors import NotFound
from trame_bot.store import partial, pending
from trame_bot.store.functions import list_elements
from trame_bot.store.models import (
    Decision,
    Member,
    Run,
    Workflow,
    Workspace,
    table,
)


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
    query = _PENDING_LOCKED if lock else _PENDING_OLDEST_FIRST
    return (await session.execute(query, {"workflow_id": workflow_id})).scalars().all()


def in_state(state: RunState) -> ColumnElement[bool]:
    """`Run.state == state`, as the partial indexes of pending and declined runs need it."""
    return partial.state_is(Run.state, state.value)


_pending_of = select(Run).where(
    Run.workflow_id == bindparam("workflow_id"), in_state(RunState.PENDING)
)
_PENDING_LOCKED = _pending_of.order_by(Run.id).with_for_update()
_PENDING_OLDEST_FIRST = _pending_of.order_by(Run.requested_at)


async def pending_in(session: AsyncSession, workspace_id: int) -> Sequence[Run]:
    result = await session.execute(
        select(Run)
        .where(Run.workspace_id == workspace_id, in_state(RunState.PENDING))
        .order_by(Run.requested_at)
    )
    return result.scalars().all()


async def pending_count(session: AsyncSession, workspace_id: int) -> int:
    result = await session.execute(
        select(func.count()).where(Run.workspace_id == workspace_id, in_state(RunState.PENDING))
    )
    return int(result.scalar_one())


async def due_for_expiry(session: AsyncSession, now: datetime, limit: int) -> Sequence[str]:
    result = await session.execute(
        select(Run.id)
        .where(in_state(RunState.PENDING), Run.expires_at <= now)
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
            in_state(RunState.APPROVED),
            Run.workflow_status == Status.PILOT,
        )
    )
    return int(result.scalar_one())


_run = table(Run)


def add_run(session: AsyncSession, **values: Any) -> Run:
    """A new run, queued with the transaction's rows (`store.pending`): the returned object is
    not in the session. A reused idempotency key fails the commit (a unique index)."""
    values.setdefault("approvals", 0)
    pending.queue(session, _run, values)
    return Run(**values)


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
        .where(Run.id == run_id, in_state(RunState.PENDING))
        .values(state=state, decided_at=now, decided_by=by, reason=reason)
        .returning(Run.id)
        .execution_options(synchronize_session=False)
    )
    return result.one_or_none() is not None


async def reviewable_by(
    session: AsyncSession, user: str, workspace_key: str | None, team_id: str | None
) -> Sequence[tuple[Run, Workspace, Workflow, bool]]:
    """Pending runs `user` reviews and has not decided, oldest first, each with its workspace,
    its workflow and whether `user` is a member there: those naming `user` as a reviewer, and
    those naming none in a workspace where `user` is a member (`domain.approvals.
    check_reviewer`, which the caller still applies: self-approval depends on the requester).
    With `workspace_key`, in that workspace only; with `team_id`, in the workspaces bound to
    that Slack team. The database judges every pending run; only these become objects."""
    named = list_elements(Run.reviewers).table_valued("value")
    any_named = list_elements(Run.reviewers).table_valued("value")
    is_member = (
        select(Member.id)
        .where(Member.workspace_id == Run.workspace_id, Member.slack_user_id == user)
        .exists()
    )
    query = (
        select(Run, Workspace, Workflow, is_member)
        .join(Workspace, Workspace.id == Run.workspace_id)
        .join(Workflow, Workflow.id == Run.workflow_id)
        .where(
            in_state(RunState.PENDING),
            or_(
                select(named.c.value).where(named.c.value == user).exists(),
                and_(~select(any_named.c.value).exists(), is_member),
            ),
            ~select(Decision.id).where(Decision.run_id == Run.id, Decision.user == user).exists(),
        )
        .order_by(Run.requested_at)
    )
    if workspace_key is not None:
        query = query.where(Workspace.key == workspace_key)
    if team_id is not None:
        query = query.where(Workspace.slack_team_id == team_id)
    rows = (await session.execute(query)).all()
    return [(run, ws, wf, bool(member)) for run, ws, wf, member in rows]


async def unreminded(session: AsyncSession, now: datetime) -> Sequence[tuple[Run, Workspace]]:
    """Pending runs not yet reminded about, with their workspace (the delay is per workspace)."""
    result = await session.execute(
        select(Run, Workspace)
        .join(Workspace, Workspace.id == Run.workspace_id)
        .where(in_state(RunState.PENDING), Run.reminded_at.is_(None), Run.requested_at <= now)
        .order_by(Run.requested_at)
    )
    return [(run, ws) for run, ws in result.all()]


async def mark_reminded(session: AsyncSession, run_id: str, now: datetime) -> bool:
    """True for the one caller that marks it: a reminder is sent once, however many schedulers."""
    result = await session.execute(
        update(Run)
        .where(Run.id == run_id, in_state(RunState.PENDING), Run.reminded_at.is_(None))
        .values(reminded_at=now)
        .returning(Run.id)
        .execution_options(synchronize_session=False)
    )
    return result.one_or_none() is not None


async def count_pending(session: AsyncSession) -> int:
    result = await session.execute(select(func.count()).where(in_state(RunState.PENDING)))
    return int(result.scalar_one())


async def declined_since(
    session: AsyncSession, workspace_id: int, since: datetime, limit: int
) -> tuple[int, Sequence[tuple[Run, str, Decision | None]]]:
    """Runs declined at or after `since`, oldest first (at most `limit`), with their workflow's
    name and the declining vote (its category), and how many there are in all."""
    where = (
        Run.workspace_id == workspace_id,
        in_state(RunState.DECLINED),
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

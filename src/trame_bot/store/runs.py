"""Runs and the decisions on them. Final states are reached only by conditional updates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from trame_bot.domain.approvals import CardChannel
from trame_bot.domain.enums import Role, RunState, Status, Verdict
from trame_bot.domain.values import storable
from trame_bot.errors import NotFound
from trame_bot.store import partial, pending
from trame_bot.store.channel import channel_key_query
from trame_bot.store.functions import list_elements
from trame_bot.store.models import (
    Decision,
    Member,
    Run,
    UTCDateTime,
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


@dataclass(frozen=True)
class DecisionContext:
    """What deciding a run starts from, read in one statement: the run, its workspace and
    workflow, the reviewer's role there and their earlier decision on it, if any."""

    run: Run
    workspace: RunWorkspace
    workflow_key: str
    workflow_name: str
    role: Role | None
    earlier: tuple[Verdict, datetime] | None
    channel_workspace_key: str | None = None
    """With a `CardChannel`: the key of the workspace its channel belongs to, if any."""


@dataclass(frozen=True)
class RunWorkspace:
    """The run's workspace, as deciding it needs it (the audit chain, the outbox, the rules)."""

    id: int
    key: str
    allow_self_approval: bool
    webhook_url: str | None


_run = table(Run)
_ws = table(Workspace)
_wf = table(Workflow)
_member = table(Member)
_decision = table(Decision)
_RUN_COLUMNS = tuple(column.key for column in _run.c)


def _decision_context(of_team: bool | None) -> Any:
    """The run's row, its workspace and workflow, the reviewer's role and earlier decision;
    with `of_team` not None, also the key of the workspace of the card's channel (the same
    subquery as `store.channel.workspace_key`), so a click costs one read, not two."""
    query = (
        select(
            _run,
            _ws.c.key.label("ws_key"),
            _ws.c.allow_self_approval.label("ws_allow_self_approval"),
            _ws.c.webhook_url.label("ws_webhook_url"),
            _wf.c.key.label("wf_key"),
            _wf.c.name.label("wf_name"),
            _member.c.role.label("reviewer_role"),
            _decision.c.verdict.label("earlier_verdict"),
            _decision.c.at.label("earlier_at"),
        )
        .join(_ws, _ws.c.id == _run.c.workspace_id)
        .join(_wf, _wf.c.id == _run.c.workflow_id)
        .outerjoin(
            _member,
            and_(
                _member.c.workspace_id == _run.c.workspace_id,
                _member.c.slack_user_id == bindparam("reviewer"),
            ),
        )
        .outerjoin(
            _decision,
            and_(_decision.c.run_id == _run.c.id, _decision.c.user == bindparam("reviewer")),
        )
        .where(_run.c.id == bindparam("run_id"))
    )
    if of_team is None:
        return query
    channel_key = channel_key_query(of_team=of_team).scalar_subquery()
    return query.add_columns(channel_key.label("channel_ws_key"))


_DECISION_CONTEXT = {of_team: _decision_context(of_team) for of_team in (None, False, True)}


async def decision_context(
    session: AsyncSession, run_id: str, reviewer: str, card: CardChannel | None = None
) -> DecisionContext | None:
    if not storable(run_id):  # a forged id (a button value, a form's metadata) names no run
        return None
    connection = await session.connection()
    params = {"run_id": run_id, "reviewer": reviewer}
    of_team = None
    if card is not None:
        of_team, params = card.team is not None, params | _card_params(card)
    row = (await connection.execute(_DECISION_CONTEXT[of_team], params)).one_or_none()
    if row is None:
        return None
    found = row._mapping
    return DecisionContext(
        run=Run(**{name: found[name] for name in _RUN_COLUMNS}),
        workspace=RunWorkspace(
            found["workspace_id"],
            found["ws_key"],
            found["ws_allow_self_approval"],
            found["ws_webhook_url"],
        ),
        workflow_key=found["wf_key"],
        workflow_name=found["wf_name"],
        role=found["reviewer_role"],
        earlier=None
        if found["earlier_verdict"] is None
        else (found["earlier_verdict"], found["earlier_at"]),
        channel_workspace_key=found.get("channel_ws_key"),
    )


async def card_workspace_key(session: AsyncSession, card: CardChannel) -> str | None:
    """The key of the workspace of the card's channel alone (`decision_context` reads it
    with the run; this is for when there is no run to read it with)."""
    connection = await session.connection()
    query = channel_key_query(of_team=card.team is not None)
    return (await connection.execute(query, _card_params(card))).scalar_one_or_none()


def _card_params(card: CardChannel) -> dict[str, str]:
    """The parameters of `channel_key_query` for the card's channel (and its team)."""
    return {"channel": card.channel} | ({} if card.team is None else {"team": card.team})


_VOTED = (_run.c.state, _run.c.approvals, _run.c.decided_at, _run.c.decided_by, _run.c.reason)
_still_pending = and_(_run.c.id == bindparam("run_id"), in_state(RunState.PENDING))
_reached = _run.c.approvals + 1 >= _run.c.required_approvals
_DECLINE = (
    update(_run)
    .where(_still_pending)
    .values(
        state=RunState.DECLINED,
        decided_at=bindparam("now", type_=UTCDateTime()),
        decided_by=bindparam("reviewer", type_=_run.c.decided_by.type),
        reason=bindparam("reason", type_=_run.c.reason.type),
    )
    .returning(*_VOTED)
)
_APPROVE = (
    update(_run)
    .where(_still_pending)
    .values(
        approvals=_run.c.approvals + 1,
        state=case((_reached, RunState.APPROVED.value), else_=_run.c.state),
        decided_at=case((_reached, bindparam("now", type_=UTCDateTime())), else_=_run.c.decided_at),
        decided_by=case(
            (_reached, bindparam("reviewer", type_=_run.c.decided_by.type)),
            else_=_run.c.decided_by,
        ),
    )
    .returning(*_VOTED)
)


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
    connection = await session.connection()
    params: dict[str, Any] = {"run_id": run.id, "reviewer": user, "now": now}
    if verdict is Verdict.DECLINE:
        params["reason"] = reason
    statement = _DECLINE if verdict is Verdict.DECLINE else _APPROVE
    row = (await connection.execute(statement, params)).one_or_none()
    if row is None:
        return None
    for column, value in zip(_VOTED, row, strict=True):
        set_committed_value(run, column.key, value)
    return RunState(row[0]), int(row[1])


def add_run(session: AsyncSession, **values: Any) -> Run:
    """A new run, queued with the transaction's rows (`store.pending`): the returned object is
    not in the session. A reused idempotency key fails the commit (a unique index)."""
    values.setdefault("approvals", 0)
    pending.queue(session, _run, values)
    return Run(**values)


def record_decision(
    session: AsyncSession,
    run_id: str,
    user: str,
    verdict: Verdict,
    now: datetime,
    *,
    reason: str | None,
    category: str | None,
) -> Decision:
    """Queued with the transaction's rows (`store.pending`); the unique (run, user) pair makes
    a second decision of the same reviewer fail the commit."""
    values = {
        "run_id": run_id,
        "user": user,
        "verdict": verdict,
        "reason": reason,
        "category": category,
        "at": now,
    }
    pending.queue(session, _decision, values)
    return Decision(**values)


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

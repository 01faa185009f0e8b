"""Deciding a run: what a decision starts from, read in one statement, and its writes (the
vote counted by a conditional UPDATE, the decision queued with the transaction's rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from trame_bot.domain.approvals import CardChannel
from trame_bot.domain.enums import Role, RunState, Verdict
from trame_bot.domain.values import storable
from trame_bot.store import pending
from trame_bot.store.channel import channel_key_query
from trame_bot.store.models import Decision, Member, Run, UTCDateTime, Workflow, Workspace, table
from trame_bot.store.runs import in_state


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

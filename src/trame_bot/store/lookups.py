"""The reads a Slack request makes before it can answer, as Core statements built once.

A `/trame` command or a click must be answered within Slack's 3 seconds, and most of what it
costs is not the database's work but ours around it: building a statement, compiling it,
turning rows into ORM objects. These statements are built at import with bound parameters,
so SQLAlchemy compiles each once per dialect and every request only binds values and reads
plain rows. Each resolves in one statement what a request starts from: the channel's
workspace, the person's role in it and, for commands that name one, the workflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.enums import Health, Role, RunState, Status
from trame_bot.store.functions import as_list, in_list, json_rows
from trame_bot.store.models import (
    AuditEvent,
    Connector,
    Decision,
    Member,
    Run,
    Trigger,
    Workflow,
    Workspace,
)

_ws = Workspace.__table__
_member = Member.__table__
_wf = Workflow.__table__
_trigger = Trigger.__table__
_run = Run.__table__
_connector = Connector.__table__

MAX_NAME_WORDS = 8
"""A workflow's name is matched from at most this many leading words of a command."""


@dataclass(frozen=True)
class ChannelScope:
    """The workspace a channel belongs to, and the role of the person who wrote in it."""

    workspace_id: int
    workspace_key: str
    approvals_channel: str
    role: Role | None


@dataclass(frozen=True)
class WorkflowRow:
    """A workflow's own columns, as the hot reads need them (no triggers, no ORM state)."""

    id: int
    workspace_id: int
    key: str
    name: str
    status: Status
    version: int
    production: bool
    steps: list[Any]
    created_at: datetime


def scope_query(*, of_team: bool, naming: bool, glance: bool = False) -> Any:
    """Channel → workspace → the person's role (→ the workflows the words may name).

    `of_team`: distributed mode, where only a workspace bound to the request's Slack team
    matches (see `store.workspaces.by_channel`). `naming`: also join the workflows whose key
    or lowercased name is one of the `names` (the leading words, longest first). `glance`:
    also each workflow's triggers, pending runs and its workspace's connectors (`json_rows`)."""
    joined = _ws.outerjoin(
        _member,
        and_(_member.c.workspace_id == _ws.c.id, _member.c.slack_user_id == bindparam("user")),
    )
    columns: list[Any] = [_ws.c.id, _ws.c.key, _ws.c.approvals_channel, _member.c.role]
    if naming:
        joined = joined.outerjoin(
            _wf,
            and_(
                _wf.c.workspace_id == _ws.c.id,
                or_(in_list(_wf.c.key, "names"), in_list(func.lower(_wf.c.name), "names")),
            ),
        )
        columns += [
            _wf.c.id.label("wf_id"),
            _wf.c.key.label("wf_key"),
            _wf.c.name.label("wf_name"),
            _wf.c.status.label("wf_status"),
            _wf.c.version.label("wf_version"),
            _wf.c.production.label("wf_production"),
            _wf.c.steps.label("wf_steps"),
            _wf.c.created_at.label("wf_created_at"),
        ]
    if naming and glance:
        columns += [
            select(json_rows(_trigger.c.id, _trigger.c.key, _trigger.c.enabled))
            .where(_trigger.c.workflow_id == _wf.c.id)
            .scalar_subquery()
            .label("wf_triggers"),
            select(
                json_rows(
                    _run.c.requested_at,
                    _run.c.id,
                    _run.c.requested_by,
                    _run.c.approvals,
                    _run.c.required_approvals,
                    _run.c.slack_channel,
                    _run.c.slack_ts,
                )
            )
            .where(_run.c.workflow_id == _wf.c.id, _run.c.state == RunState.PENDING)
            .scalar_subquery()
            .label("wf_pending"),
            select(json_rows(_connector.c.key, _connector.c.health))
            .where(_connector.c.workspace_id == _ws.c.id)
            .scalar_subquery()
            .label("ws_connectors"),
        ]
    channel: Any = bindparam("channel")
    query = select(*columns).select_from(joined)
    query = query.where(or_(_ws.c.approvals_channel == channel, _ws.c.ops_channel == channel))
    if of_team:
        query = query.where(_ws.c.slack_team_id == bindparam("team"))
    return query.order_by(_ws.c.id)


_SCOPE = {
    (team, naming): scope_query(of_team=team, naming=naming)
    for team in (False, True)
    for naming in (False, True)
}
_TRIGGERS = (
    select(_trigger.c.key, _trigger.c.enabled)
    .where(_trigger.c.workflow_id == bindparam("workflow"))
    .order_by(_trigger.c.id)
)
_PENDING = (
    select(
        _run.c.id,
        _run.c.requested_by,
        _run.c.requested_at,
        _run.c.approvals,
        _run.c.required_approvals,
        _run.c.slack_channel,
        _run.c.slack_ts,
    )
    .where(_run.c.workflow_id == bindparam("workflow"), _run.c.state == RunState.PENDING)
    .order_by(_run.c.requested_at)
)
_WORKSPACE_HEALTH = select(_connector.c.key, _connector.c.health).where(
    _connector.c.workspace_id == bindparam("workspace")
)
_HEALTH = select(_connector.c.key, _connector.c.health).where(
    _connector.c.workspace_id == bindparam("workspace"),
    _connector.c.key.in_(bindparam("keys", expanding=True)),
)


_decision = Decision.__table__
_audit = AuditEvent.__table__
_CARD = (
    select(
        _run,
        _ws.c.key.label("workspace_key"),
        _ws.c.approvals_channel,
        _wf.c.key.label("workflow_key"),
        _wf.c.name.label("workflow_name"),
        _wf.c.production,
        _wf.c.prompt,
    )
    .select_from(
        _run.join(_ws, _ws.c.id == _run.c.workspace_id).join(_wf, _wf.c.id == _run.c.workflow_id)
    )
    .where(_run.c.id == bindparam("run"))
)
_CARD_MESSAGE = (
    select(_run.c.slack_channel, _run.c.slack_ts, _ws.c.approvals_channel)
    .select_from(_run.join(_ws, _ws.c.id == _run.c.workspace_id))
    .where(_run.c.id == bindparam("run"))
)
_DECISIONS = (
    select(
        _decision.c.user,
        _decision.c.verdict,
        _decision.c.reason,
        _decision.c.category,
        _decision.c.at,
    )
    .where(_decision.c.run_id == bindparam("run"))
    .order_by(_decision.c.at, _decision.c.id)
)
_WIDENED = select(_audit.c.entity_id, _audit.c.data).where(
    _audit.c.workspace_id == bindparam("workspace"),
    _audit.c.entity_type == "connector",
    _audit.c.entity_id.in_(bindparam("keys", expanding=True)),
    _audit.c.action == bindparam("action"),
    _audit.c.at >= bindparam("since", type_=_audit.c.at.type),
)


_WORKFLOWS = (
    select(
        _wf.c.id,
        _wf.c.workspace_id,
        _wf.c.key,
        _wf.c.name,
        _wf.c.status,
        _wf.c.version,
        _wf.c.production,
        _wf.c.steps,
        _wf.c.created_at,
    )
    .where(_wf.c.workspace_id == bindparam("workspace"))
    .order_by(_wf.c.key)
)
_WORKSPACE_TRIGGERS = (
    select(_trigger.c.workflow_id, _trigger.c.key, _trigger.c.enabled)
    .select_from(_trigger.join(_wf, _wf.c.id == _trigger.c.workflow_id))
    .where(_wf.c.workspace_id == bindparam("workspace"))
    .order_by(_trigger.c.id)
)


def name_candidates(words: Sequence[str]) -> list[str]:
    """What the leading words may name, longest first: "invoice sync now" → "invoice sync
    now", "invoice sync", "invoice" (lowercased, as keys are and names are compared)."""
    lowered = [w.lower() for w in words[:MAX_NAME_WORDS]]
    return [" ".join(lowered[:size]) for size in range(len(lowered), 0, -1)]


async def channel_scope(
    session: AsyncSession, team_id: str | None, channel: str, user: str
) -> ChannelScope | None:
    """The channel's workspace and `user`'s role in it, in one statement; None if unbound."""
    params: dict[str, Any] = {"channel": channel, "user": user}
    if team_id is not None:
        params["team"] = team_id
    connection = await session.connection()
    row = (await connection.execute(_SCOPE[team_id is not None, False], params)).first()
    return None if row is None else _scope(row)


async def channel_workflow(
    session: AsyncSession, team_id: str | None, channel: str, user: str, words: Sequence[str]
) -> tuple[ChannelScope | None, WorkflowRow | None, tuple[str, ...]]:
    """The channel's workspace, `user`'s role and the workflow the leading `words` name (by
    key or name, any case, the longest match), with the words after it — in one statement.

    Names are lowercased by the database, which folds only ASCII letters on SQLite: a name
    with other letters may not match here, and the caller then falls back to matching in
    Python (`domain.values.match_workflow`), so the answer is the same, one read later."""
    query = _SCOPE[team_id is not None, True]
    scope, row, rest = await _named(session, query, team_id, channel, user, words)
    return scope, None if row is None else _workflow(row), rest


async def health_in(session: AsyncSession, workspace_id: int) -> dict[str, Health]:
    """Every connector of the workspace, by key: its health."""
    connection = await session.connection()
    result = await connection.execute(_WORKSPACE_HEALTH, {"workspace": workspace_id})
    return {connector.key: connector.health for connector in result}


async def _named(
    session: AsyncSession,
    query: Any,
    team_id: str | None,
    channel: str,
    user: str,
    words: Sequence[str],
) -> tuple[ChannelScope | None, Any, tuple[str, ...]]:
    params, names = naming_params(team_id, channel, user, words)
    connection = await session.connection()
    return pick_named((await connection.execute(query, params)).all(), names, words)


def naming_params(
    team_id: str | None, channel: str, user: str, words: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """The parameters of a `scope_query(naming=True)`, and the names the words may mean."""
    names = name_candidates(words)
    params: dict[str, Any] = {"channel": channel, "user": user, "names": as_list(names)}
    if team_id is not None:
        params["team"] = team_id
    return params, names


def pick_named(
    rows: Sequence[Any], names: Sequence[str], words: Sequence[str]
) -> tuple[ChannelScope | None, Any, tuple[str, ...]]:
    """The scope, the row of the workflow the longest of `names` means, and the words after
    it, from the rows of a `scope_query(naming=True)`: one per workflow a name may mean, or
    one without a workflow; SQLAlchemy's rows or named tuples of the driver's
    (`store.glance`). Only the first workspace's rows count (they come ordered by workspace)."""
    if not rows:
        return None, None, tuple(words)
    first = rows[0].id
    matched = [row for row in rows if row.id == first and row.wf_id is not None]
    scope = _scope(rows[0])
    for size, name in zip(range(len(names), 0, -1), names, strict=True):
        for row in matched:
            if name in (row.wf_key, row.wf_name.lower()):
                return scope, row, tuple(words[size:])
    return scope, None, tuple(words)


async def workflows_of(
    session: AsyncSession, workspace_id: int
) -> tuple[list[WorkflowRow], dict[int, list[tuple[str, bool]]]]:
    """Every workflow of the workspace by key, as rows, with each one's triggers: what the
    overview lists (two statements, however many workflows there are)."""
    connection = await session.connection()
    params = {"workspace": workspace_id}
    rows = [WorkflowRow(*row) for row in (await connection.execute(_WORKFLOWS, params)).all()]
    triggers: dict[int, list[tuple[str, bool]]] = {}
    for workflow_id, key, enabled in (await connection.execute(_WORKSPACE_TRIGGERS, params)).all():
        triggers.setdefault(workflow_id, []).append((key, enabled))
    return rows, triggers


async def triggers(session: AsyncSession, workflow_id: int) -> tuple[tuple[str, bool], ...]:
    connection = await session.connection()
    result = await connection.execute(_TRIGGERS, {"workflow": workflow_id})
    return tuple((key, enabled) for key, enabled in result.all())


async def pending_runs(session: AsyncSession, workflow_id: int) -> Sequence[Any]:
    """The workflow's pending runs, oldest first: id, requester, time, approvals, card."""
    connection = await session.connection()
    return (await connection.execute(_PENDING, {"workflow": workflow_id})).all()


async def health_of(
    session: AsyncSession, workspace_id: int, keys: Sequence[str]
) -> dict[str, Health]:
    """Health of those of `keys` that are this workspace's connectors; others are absent."""
    if not keys:
        return {}
    connection = await session.connection()
    result = await connection.execute(_HEALTH, {"workspace": workspace_id, "keys": list(keys)})
    return dict(result.all())


async def card_of(session: AsyncSession, run_id: str) -> Any | None:
    """A run's columns with its workspace's key and approvals channel and its workflow's key,
    name, production flag and prompt: what its approval card shows, in one statement."""
    connection = await session.connection()
    return (await connection.execute(_CARD, {"run": run_id})).first()


async def card_message(session: AsyncSession, run_id: str) -> tuple[str, str | None] | None:
    """Where a run's card is (channel, ts), or will be posted (ts None); None: no such run."""
    connection = await session.connection()
    row = (await connection.execute(_CARD_MESSAGE, {"run": run_id})).first()
    return None if row is None else (row.slack_channel or row.approvals_channel, row.slack_ts)


async def decisions_of(session: AsyncSession, run_id: str) -> Sequence[Any]:
    """A run's decisions in order: user, verdict, reason, category, at."""
    connection = await session.connection()
    return (await connection.execute(_DECISIONS, {"run": run_id})).all()


async def audit_data(
    session: AsyncSession, workspace_id: int, action: str, keys: Sequence[str], since: datetime
) -> Sequence[Any]:
    """(entity_id, data) of the workspace's connector events `action` about `keys` since."""
    if not keys:
        return []
    params = {"workspace": workspace_id, "keys": list(keys), "action": action, "since": since}
    connection = await session.connection()
    return (await connection.execute(_WIDENED, params)).all()


def workflow_row(workflow: Workflow) -> WorkflowRow:
    return WorkflowRow(
        id=workflow.id,
        workspace_id=workflow.workspace_id,
        key=workflow.key,
        name=workflow.name,
        status=workflow.status,
        version=workflow.version,
        production=workflow.production,
        steps=workflow.steps,
        created_at=workflow.created_at,
    )


def _scope(row: Any) -> ChannelScope:
    return ChannelScope(row.id, row.key, row.approvals_channel, row.role)


def _workflow(row: Any) -> WorkflowRow:
    return WorkflowRow(
        id=row.wf_id,
        workspace_id=row.id,
        key=row.wf_key,
        name=row.wf_name,
        status=row.wf_status,
        version=row.wf_version,
        production=row.wf_production,
        steps=row.wf_steps,
        created_at=row.wf_created_at,
    )

"""What a Slack request starts from, in one statement run on the driver (`store.direct`):
the channel's workspace, the person's role in it and, for commands that name one, the
workflow the words name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, case, func, or_, select

from trame_bot.domain.enums import Role, RunState, Status
from trame_bot.store.direct import Lookup, Statement
from trame_bot.store.functions import as_list, in_list, json_rows
from trame_bot.store.lookups import WorkflowRow
from trame_bot.store.models import Connector, Member, Run, Trigger, Workflow, Workspace
from trame_bot.store.partial import state_is
from trame_bot.store.pilot import record_events

_ws = Workspace.__table__
_member = Member.__table__
_wf = Workflow.__table__
_trigger = Trigger.__table__
_run = Run.__table__
_connector = Connector.__table__

_Named = TypeVar("_Named")

MAX_NAME_WORDS = 8
"""A workflow's name is matched from at most this many leading words of a command."""


@dataclass(frozen=True)
class ChannelScope:
    """The workspace a channel belongs to, and the role of the person who wrote in it."""

    workspace_id: int
    workspace_key: str
    approvals_channel: str
    role: Role | None


def scope_query(*, of_team: bool, naming: bool, glance: bool = False) -> Any:
    """Channel → workspace → the person's role (→ the workflows the words may name).

    `of_team`: distributed mode, where only a workspace bound to the request's Slack team
    matches (see `workspace_key`). `naming`: also join the workflows whose key
    or lowercased name is one of the `names` (the leading words, longest first). `glance`:
    also each workflow's triggers, pending runs and its workspace's connectors (`json_rows`),
    and a pilot's record (`store.pilot.record_events`)."""
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
            .where(_run.c.workflow_id == _wf.c.id, state_is(_run.c.state, RunState.PENDING))
            .scalar_subquery()
            .label("wf_pending"),
            select(json_rows(_connector.c.key, _connector.c.health))
            .where(_connector.c.workspace_id == _ws.c.id)
            .scalar_subquery()
            .label("ws_connectors"),
            # Read only for a pilot: neither database runs a CASE branch it does not take.
            case((_wf.c.status == Status.PILOT, record_events(_wf))).label("wf_record"),
        ]
    channel: Any = bindparam("channel")
    query = select(*columns).select_from(joined)
    query = query.where(or_(_ws.c.approvals_channel == channel, _ws.c.ops_channel == channel))
    if of_team:
        query = query.where(_ws.c.slack_team_id == bindparam("team"))
    return query.order_by(_ws.c.id)


_NAMING = {team: Statement(scope_query(of_team=team, naming=True)) for team in (False, True)}


def channel_key_query(*, of_team: bool) -> Any:
    """The key of the first workspace whose approvals or ops channel is the bound `channel`
    (of the bound `team` when `of_team`): see `workspace_key`."""
    channel: Any = bindparam("channel")
    query = select(_ws.c.key).where(
        or_(_ws.c.approvals_channel == channel, _ws.c.ops_channel == channel)
    )
    if of_team:
        query = query.where(_ws.c.slack_team_id == bindparam("team"))
    return query.order_by(_ws.c.id).limit(1)


_KEY = {team: Statement(channel_key_query(of_team=team)) for team in (False, True)}


def name_candidates(words: Sequence[str]) -> list[str]:
    """What the leading words may name, longest first: "invoice sync now" → "invoice sync
    now", "invoice sync", "invoice" (lowercased, as keys are and names are compared)."""
    lowered = [w.lower() for w in words[:MAX_NAME_WORDS]]
    return [" ".join(lowered[:size]) for size in range(len(lowered), 0, -1)]


async def workspace_key(lookup: Lookup, team_id: str | None, channel: str) -> str | None:
    """The key of the workspace a Slack channel (approvals or ops) belongs to. `team_id` is
    the Slack team the request came from in distributed mode: only a workspace bound to that
    team matches, so ids from one team never reach another team's workspace, and an unbound
    team reaches none. None is one-workspace mode (one bot token, one team): any workspace
    matches."""
    params = {"channel": channel} if team_id is None else {"channel": channel, "team": team_id}
    rows = await lookup(_KEY[team_id is not None], params)
    return rows[0].key if rows else None


async def channel_workflow(
    lookup: Lookup, team_id: str | None, channel: str, user: str, words: Sequence[str]
) -> tuple[ChannelScope | None, WorkflowRow | None, tuple[str, ...]]:
    """The channel's workspace, `user`'s role and the workflow the leading `words` name (by
    key or name, any case, the longest match), with the words after it — in one statement.

    Names are lowercased by the database, which folds only ASCII letters on SQLite: a name
    with other letters may not match here, and the caller then falls back to matching in
    Python (`domain.values.match_workflow`), so the answer is the same, one read later."""
    params, names = naming_params(team_id, channel, user, words)
    rows = await lookup(_NAMING[team_id is not None], params)
    scope, row, rest = pick_named(rows, names, words)
    return scope, None if row is None else workflow_of(row), rest


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
    one without a workflow. Only the first workspace's rows count (they come ordered by
    workspace)."""
    if not rows:
        return None, None, tuple(words)
    first = rows[0].id
    matched = [row for row in rows if row.id == first and row.wf_id is not None]
    named = longest_named(matched, _workflow_key_and_name, names, words)
    return (_scope(rows[0]), *named) if named else (_scope(rows[0]), None, tuple(words))


def _workflow_key_and_name(row: Any) -> tuple[str, str]:
    return row.wf_key, row.wf_name


def longest_named(
    candidates: Sequence[_Named],
    key_and_name: Callable[[_Named], tuple[str, str]],
    names: Sequence[str],
    words: Sequence[str],
) -> tuple[_Named, tuple[str, ...]] | None:
    """The candidate whose key or name (any case) is the longest of `names`
    (`name_candidates(words)`), the first such in order, and the words after it."""
    for size, name in zip(range(len(names), 0, -1), names, strict=True):
        for candidate in candidates:
            key, full_name = key_and_name(candidate)
            if name in (key, full_name.lower()):
                return candidate, tuple(words[size:])
    return None


def _scope(row: Any) -> ChannelScope:
    return ChannelScope(row.id, row.key, row.approvals_channel, row.role)


def workflow_of(row: Any) -> WorkflowRow:
    """The workflow of a row `pick_named` picked (its `wf_` columns)."""
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

"""Workflows and their triggers."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    BindParameter,
    Select,
    and_,
    bindparam,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from trame_bot.domain.enums import Role, Status
from trame_bot.errors import NotFound
from trame_bot.store.channel import longest_named, name_candidates
from trame_bot.store.functions import as_list, in_list
from trame_bot.store.models import Member, Workflow, Workspace


async def find(
    session: AsyncSession, workspace_id: int, ref: str, *, lock: bool = False
) -> Workflow | None:
    """By key or by name, case-insensitively; an exact key wins over a name."""
    wanted = ref.strip().lower()
    query = (
        select(Workflow)
        .options(selectinload(Workflow.triggers))
        .where(
            Workflow.workspace_id == workspace_id,
            or_(func.lower(Workflow.key) == wanted, func.lower(Workflow.name) == wanted),
        )
        .order_by((func.lower(Workflow.key) == wanted).desc(), Workflow.id)
        .limit(1)
    )
    if lock:
        query = query.with_for_update(of=Workflow)
    return (await session.execute(query)).scalar_one_or_none()


async def get(
    session: AsyncSession, workspace_id: int, ref: str, *, lock: bool = False
) -> Workflow:
    workflow = await find(session, workspace_id, ref, lock=lock)
    if workflow is None:
        raise NotFound(f"no workflow {ref!r} in this workspace (see `/trame workflows`)")
    return workflow


_ref: BindParameter[str] = bindparam("ref")
_WORKFLOW_AND_ROLE = (
    select(Workspace, Workflow, Member.role)
    .join(Workflow, Workflow.workspace_id == Workspace.id)
    .outerjoin(
        Member,
        and_(Member.workspace_id == Workspace.id, Member.slack_user_id == bindparam("user")),
    )
)
"""A workspace's workflows with the role of `user` there; the reads below say which."""
_WITH_ROLE = (
    _WORKFLOW_AND_ROLE.where(
        Workspace.key == bindparam("workspace"),
        or_(func.lower(Workflow.key) == _ref, func.lower(Workflow.name) == _ref),
    )
    .order_by((func.lower(Workflow.key) == _ref).desc(), Workflow.id)
    .limit(1)
)
_LOCKED_WITH_ROLE = _WITH_ROLE.with_for_update(of=Workflow)


async def with_role(
    session: AsyncSession,
    workspace_key: str,
    ref: str,
    user: str | None,
    *,
    lock: bool = False,
) -> tuple[Workspace, Workflow, Role | None] | None:
    """The workspace, its workflow `ref` (as `find` matches it) and the role of `user` there,
    in one statement built once; None when either is missing. The workflow's triggers are not
    loaded (`with_triggers` loads them).

    With `lock` the workflow is locked for a change (`FOR UPDATE`; a run request holds it
    shared instead, `store.run_scope.for_run`). On SQLite a write transaction holds the whole database
    anyway."""
    statement = _LOCKED_WITH_ROLE if lock else _WITH_ROLE
    found = (
        await session.execute(
            statement,
            {"workspace": workspace_key, "ref": ref.strip().lower(), "user": user or ""},
        )
    ).one_or_none()
    return None if found is None else (found[0], found[1], found[2])


_bound = Workspace.__table__.alias("bound")
_channel: BindParameter[str] = bindparam("channel")


def _named_query(*, of_team: bool) -> Select[Workspace, Workflow, Role]:
    first_bound = select(func.min(_bound.c.id)).where(
        or_(_bound.c.approvals_channel == _channel, _bound.c.ops_channel == _channel)
    )
    if of_team:
        first_bound = first_bound.where(_bound.c.slack_team_id == bindparam("team"))
    return (
        _WORKFLOW_AND_ROLE.where(
            Workspace.id == first_bound.scalar_subquery(),
            or_(in_list(Workflow.key, "names"), in_list(func.lower(Workflow.name), "names")),
        )
        .order_by(Workflow.key)
        .with_for_update(of=Workflow)
    )


_LOCKED_NAMED = {team: _named_query(of_team=team) for team in (False, True)}


async def named_with_role(
    session: AsyncSession, team_id: str | None, channel: str, user: str, words: Sequence[str]
) -> tuple[Workspace, Workflow, Role | None, tuple[str, ...]] | None:
    """`with_role` from where a command was written: the workspace the channel belongs to (as
    `store.channel.workspace_key` finds it), the workflow its leading `words` name (as
    `store.channel.channel_workflow` matches it) locked for a change, the role of `user` and
    the words after the name, in one statement. None when the database finds no such
    workflow: the channel is not bound, no workflow has that name, or the name has letters
    SQLite does not lowercase; the two-read path then says which, or matches it in Python.

    Every workflow the leading words may name is locked, in key order (as an alert's pause
    locks several: two such transactions never wait for each other crosswise); there is more
    than one only when one's name is the start of another's and the command names the longer
    one."""
    names = name_candidates(words)
    params = {"channel": channel, "user": user, "names": as_list(names)}
    if team_id is not None:
        params["team"] = team_id
    found: list[tuple[Workspace, Workflow, Role | None]] = [
        (workspace, workflow, role)
        for workspace, workflow, role in await session.execute(
            _LOCKED_NAMED[team_id is not None], params
        )
    ]
    named = longest_named(found, _key_and_name, names, words)
    if named is None:
        return None
    (workspace, workflow, role), rest = named
    return workspace, workflow, role, rest


def _key_and_name(found: tuple[Workspace, Workflow, Role | None]) -> tuple[str, str]:
    return found[1].key, found[1].name


async def with_triggers(session: AsyncSession, workflow: Workflow) -> Workflow:
    if "triggers" in inspect(workflow).unloaded:
        await session.refresh(workflow, ["triggers"])
    return workflow


async def list_for(session: AsyncSession, workspace_id: int) -> Sequence[Workflow]:
    result = await session.execute(
        select(Workflow)
        .options(selectinload(Workflow.triggers))
        .where(Workflow.workspace_id == workspace_id)
        .order_by(Workflow.key)
    )
    return result.scalars().all()


async def using_connector(session: AsyncSession, workspace_id: int, key: str) -> list[Workflow]:
    return using(await list_for(session, workspace_id), key)


def using(workflows: Sequence[Workflow], key: str) -> list[Workflow]:
    """Those of `workflows` with a step through the connector `key`."""
    return [w for w in workflows if any(step.get("connector") == key for step in w.steps)]


async def names(session: AsyncSession, workspace_id: int) -> list[tuple[str, str]]:
    """(key, name) of every workflow: enough to resolve what someone typed, cheaply."""
    result = await session.execute(
        select(Workflow.key, Workflow.name)
        .where(Workflow.workspace_id == workspace_id)
        .order_by(Workflow.key)
    )
    return [(key, name) for key, name in result.all()]


async def count_by_status(session: AsyncSession, workspace_id: int) -> dict[Status, int]:
    result = await session.execute(
        select(Workflow.status, func.count())
        .where(Workflow.workspace_id == workspace_id)
        .group_by(Workflow.status)
    )
    return dict(result.all())

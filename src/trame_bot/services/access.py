"""Resolving an actor to the role that applies in a workspace."""

from __future__ import annotations

from dataclasses import replace
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role
from trame_bot.domain.roles import check_at_least
from trame_bot.errors import NotFound
from trame_bot.store import workflows as workflow_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.models import Workflow, Workspace


async def role_of(session: AsyncSession, workspace: Workspace, actor: Actor) -> Role | None:
    if actor.user is None:
        return actor.authority
    return await workspace_store.role_of(session, workspace.id, actor.user)


async def require(
    session: AsyncSession, workspace: Workspace, actor: Actor, needed: Role, what: str
) -> Role:
    return check_at_least(await role_of(session, workspace, actor), needed, what)


async def workflow_with_role(
    session: AsyncSession,
    key: str,
    ref: str,
    actor: Actor,
    *,
    lock: bool = False,
) -> tuple[Workspace, Workflow, Role | None]:
    """The workspace `key`, its workflow `ref` (with `lock`, locked for a change) and the role
    that applies to `actor` there, in one read (`store.workflows.with_role`)."""
    found = await workflow_store.with_role(session, key, ref, actor.user, lock=lock)
    if found is None:
        await _missing(session, key, ref)
    workspace, workflow, member_role = found
    return workspace, workflow, actor.authority if actor.user is None else member_role


async def workflow_for_run(
    session: AsyncSession, key: str, ref: str, actor: Actor
) -> workflow_store.RunScope:
    """`workflow_with_role`, the workflow held against a change, with the gate's other inputs,
    in one read (`store.workflows.for_run`); the role is the one that applies to `actor`."""
    found = await workflow_store.for_run(session, key, ref, actor.user)
    if found is None:
        await _missing(session, key, ref)
    return found if actor.user is not None else replace(found, role=actor.authority)


async def _missing(session: AsyncSession, key: str, ref: str) -> NoReturn:
    """Raise NotFound naming what is missing: the workspace, or its workflow (each `get`
    raises it)."""
    workspace = await workspace_store.get(session, key)
    await workflow_store.get(session, workspace.id, ref)
    raise NotFound(f"no workflow {ref!r} in this workspace")  # both appeared meanwhile

"""Resolving an actor to the role that applies in a workspace."""

from __future__ import annotations

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
    shared: bool = False,
) -> tuple[Workspace, Workflow, Role | None]:
    """The workspace `key`, its workflow `ref` (with `lock`, locked for a change; `shared`,
    held against one) and the role that applies to `actor` there, in one read
    (`store.workflows.with_role`)."""
    found = await workflow_store.with_role(session, key, ref, actor.user, lock=lock, shared=shared)
    if found is None:  # each `get` raises NotFound naming what is missing
        workspace = await workspace_store.get(session, key)
        await workflow_store.get(session, workspace.id, ref)
        raise NotFound(f"no workflow {ref!r} in this workspace")  # both appeared meanwhile
    workspace, workflow, member_role = found
    return workspace, workflow, actor.authority if actor.user is None else member_role

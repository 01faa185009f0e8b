"""Resolving an actor to the role that applies in a workspace."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role
from trame_bot.domain.roles import check_at_least
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.models import Workspace


async def role_of(session: AsyncSession, workspace: Workspace, actor: Actor) -> Role | None:
    if actor.user is None:
        return actor.authority
    return await workspace_store.role_of(session, workspace.id, actor.user)


async def require(
    session: AsyncSession, workspace: Workspace, actor: Actor, needed: Role, what: str
) -> Role:
    return check_at_least(await role_of(session, workspace, actor), needed, what)

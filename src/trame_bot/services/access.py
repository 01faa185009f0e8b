"""Resolving an actor to the role that applies in a workspace."""

from __future__ import annotations

from dataclasses import replace
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role
from trame_bot.domain.roles import check_at_least
from trame_bot.errors import NotFound, Unauthenticated
from trame_bot.store import run_scope
from trame_bot.store import workflows as workflow_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.direct import Lookup
from trame_bot.store.models import Workflow, Workspace
from trame_bot.store.run_scope import ByApiKey


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
    session: AsyncSession,
    lookup: Lookup,
    workspace: str | ByApiKey,
    ref: str,
    actor: Actor | None,
) -> tuple[run_scope.RunScope, Actor]:
    """`workflow_with_role`, the workflow held against a change, with the gate's other inputs,
    in one read (`store.run_scope.for_run`), and who acts: `actor`, or with None the API key
    that names the workspace (`Actor.api`). The scope's role is the one that applies to the
    actor. `lookup` serves only to say what is missing: the key (Unauthenticated), the
    workspace or the workflow (NotFound)."""
    found = await run_scope.for_run(session, workspace, ref, actor.user if actor else None)
    if found is None:
        if isinstance(workspace, ByApiKey):
            holder = await workspace_store.key_holder(lookup, workspace.key_hash)
            if holder is None:
                raise Unauthenticated
            workspace = holder.workspace
        await _missing(session, workspace, ref)
    if actor is None:
        assert found.key_name is not None  # named by its key: the read gave its name
        actor = Actor.api(found.key_name)
    return found if actor.user is not None else replace(found, role=actor.authority), actor


async def _missing(session: AsyncSession, key: str, ref: str) -> NoReturn:
    """Raise NotFound naming what is missing: the workspace, or its workflow (each `get`
    raises it)."""
    workspace = await workspace_store.get(session, key)
    await workflow_store.get(session, workspace.id, ref)
    raise NotFound(f"no workflow {ref!r} in this workspace")  # both appeared meanwhile

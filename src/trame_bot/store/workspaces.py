"""Workspaces, their members and API keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.enums import Role
from trame_bot.errors import NotFound
from trame_bot.store.direct import Lookup, Statement
from trame_bot.store.models import ApiKey, Member, Workspace


async def find(session: AsyncSession, key: str, *, lock: bool = False) -> Workspace | None:
    query = select(Workspace).where(Workspace.key == key)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get(session: AsyncSession, key: str, *, lock: bool = False) -> Workspace:
    workspace = await find(session, key, lock=lock)
    if workspace is None:
        raise NotFound(f"no workspace {key!r}: `trame-bot workspace list` shows the ones there are")
    return workspace


async def channel_taken(session: AsyncSession, channel: str, workspace_id: int | None) -> bool:
    """Whether a workspace other than `workspace_id` uses `channel` (approvals or ops)."""
    query = select(Workspace.id).where(
        or_(Workspace.approvals_channel == channel, Workspace.ops_channel == channel)
    )
    if workspace_id is not None:
        query = query.where(Workspace.id != workspace_id)
    return (await session.execute(query.limit(1))).first() is not None


async def list_all(session: AsyncSession) -> Sequence[Workspace]:
    return (await session.execute(select(Workspace).order_by(Workspace.key))).scalars().all()


async def member(session: AsyncSession, workspace_id: int, user: str) -> Member | None:
    result = await session.execute(
        select(Member).where(Member.workspace_id == workspace_id, Member.slack_user_id == user)
    )
    return result.scalar_one_or_none()


async def role_of(session: AsyncSession, workspace_id: int, user: str) -> Role | None:
    found = await member(session, workspace_id, user)
    return None if found is None else found.role


async def members(session: AsyncSession, workspace_id: int) -> Sequence[Member]:
    result = await session.execute(
        select(Member).where(Member.workspace_id == workspace_id).order_by(Member.slack_user_id)
    )
    return result.scalars().all()


async def count_owners(session: AsyncSession, workspace_id: int) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(Member)
        .where(Member.workspace_id == workspace_id, Member.role == Role.OWNER)
    )
    return int(result.scalar_one())


async def active_key(session: AsyncSession, workspace_id: int, name: str) -> ApiKey | None:
    result = await session.execute(
        select(ApiKey).where(
            ApiKey.workspace_id == workspace_id, ApiKey.name == name, ApiKey.revoked_at.is_(None)
        )
    )
    return result.scalar_one_or_none()


async def api_keys(session: AsyncSession, workspace_id: int) -> Sequence[ApiKey]:
    result = await session.execute(
        select(ApiKey).where(ApiKey.workspace_id == workspace_id).order_by(ApiKey.created_at)
    )
    return result.scalars().all()


class KeyHolder(NamedTuple):
    """Whose an API key is: the workspace's key and the key's name."""

    workspace: str
    name: str


_KEY_HOLDER = Statement(
    select(Workspace.key, ApiKey.name)
    .join(Workspace, Workspace.id == ApiKey.workspace_id)
    .where(ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None))
)


async def key_holder(lookup: Lookup, key_hash: str) -> KeyHolder | None:
    """The holder of the active key with this hash, on the driver (`store.direct`): every API
    request asks; two ORM objects per request cost more than the read."""
    rows = await lookup(_KEY_HOLDER, {"key_hash": key_hash})
    return KeyHolder(rows[0].key, rows[0].name) if rows else None


async def of_member(session: AsyncSession, user: str) -> Sequence[Workspace]:
    """The workspaces where `user` has a role."""
    result = await session.execute(
        select(Workspace)
        .join(Member, Member.workspace_id == Workspace.id)
        .where(Member.slack_user_id == user)
        .order_by(Workspace.key)
    )
    return result.scalars().all()


async def by_id(session: AsyncSession, workspace_id: int) -> Workspace:
    workspace = await session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound("the workspace no longer exists")
    return workspace

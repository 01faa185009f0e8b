"""Slack installations (distributed mode): one row per Slack team, found by team or by the
workspace bound to it, and the grants and OAuth states an install goes through. Tokens stay
sealed here; services open them with the vault."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.store.direct import Lookup, Statement
from trame_bot.store.models import InstallGrant, OAuthState, SlackInstallation, Workspace

_INSTALLATION = SlackInstallation.__table__
_OF_TEAM = Statement(select(_INSTALLATION).where(_INSTALLATION.c.team_id == bindparam("team")))
_WORKSPACE = Workspace.__table__
_OF_WORKSPACE = Statement(
    select(_INSTALLATION)
    .join(_WORKSPACE, _WORKSPACE.c.slack_team_id == _INSTALLATION.c.team_id)
    .where(_WORKSPACE.c.id == bindparam("workspace"))
)


async def for_team(session: AsyncSession, team_id: str) -> SlackInstallation | None:
    result = await session.execute(
        select(SlackInstallation).where(SlackInstallation.team_id == team_id)
    )
    return result.scalar_one_or_none()


async def of_team(lookup: Lookup, team_id: str) -> Any | None:
    """The team's installation as a row (its columns), on the driver: Bolt asks for it on
    every request of distributed mode."""
    rows = await lookup(_OF_TEAM, {"team": team_id})
    return rows[0] if rows else None


async def of_workspace(lookup: Lookup, workspace_id: int) -> Any | None:
    """The installation of the team the workspace is bound to, as a row, on the driver: the
    outbox asks for it on every message it sends in distributed mode."""
    rows = await lookup(_OF_WORKSPACE, {"workspace": workspace_id})
    return rows[0] if rows else None


async def for_workspace(session: AsyncSession, workspace_id: int) -> SlackInstallation | None:
    result = await session.execute(
        select(SlackInstallation)
        .join(Workspace, Workspace.slack_team_id == SlackInstallation.team_id)
        .where(Workspace.id == workspace_id)
    )
    return result.scalar_one_or_none()


async def mark_disconnected(session: AsyncSession, team_id: str, reason: str, at: datetime) -> bool:
    """True for the one caller that marked it; a team already marked stays as it was."""
    result = await session.execute(
        update(SlackInstallation)
        .where(SlackInstallation.team_id == team_id, SlackInstallation.disconnected_at.is_(None))
        .values(disconnected_at=at, disconnected_reason=reason)
        .returning(SlackInstallation.id)
        .execution_options(synchronize_session=False)
    )
    return result.one_or_none() is not None


async def bound_workspaces(session: AsyncSession, team_id: str) -> Sequence[Workspace]:
    """The workspaces a Slack team serves (one team may serve several)."""
    result = await session.execute(
        select(Workspace).where(Workspace.slack_team_id == team_id).order_by(Workspace.id)
    )
    return result.scalars().all()


async def all_installations(
    session: AsyncSession, *, lock: bool = False
) -> Sequence[SlackInstallation]:
    query = select(SlackInstallation).order_by(SlackInstallation.id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalars().all()


# ---- install grants and OAuth states ---------------------------------------------------------


async def grant(session: AsyncSession, grant_id: str) -> InstallGrant | None:
    return await session.get(InstallGrant, grant_id)


async def use_grant(session: AsyncSession, grant_id: str, team_id: str, at: datetime) -> int | None:
    """The grant's workspace id for the one caller that used it while it was unused and
    unexpired; None for everyone else (the row is left as it was)."""
    result = await session.execute(
        update(InstallGrant)
        .where(
            InstallGrant.id == grant_id,
            InstallGrant.used_at.is_(None),
            InstallGrant.expires_at > at,
        )
        .values(used_at=at, used_by_team=team_id)
        .returning(InstallGrant.workspace_id)
        .execution_options(synchronize_session=False)
    )
    row = result.one_or_none()
    return None if row is None else int(row[0])


async def state(session: AsyncSession, value: str) -> OAuthState | None:
    return await session.get(OAuthState, value)


async def consume_state(session: AsyncSession, value: str, at: datetime) -> str | None:
    """The state's grant id for the one caller that consumed it unconsumed and unexpired."""
    result = await session.execute(
        update(OAuthState)
        .where(
            OAuthState.state == value,
            OAuthState.consumed_at.is_(None),
            OAuthState.expires_at > at,
        )
        .values(consumed_at=at)
        .returning(OAuthState.grant_id)
        .execution_options(synchronize_session=False)
    )
    row = result.one_or_none()
    return None if row is None else str(row[0])

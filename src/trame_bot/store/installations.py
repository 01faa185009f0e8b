"""Slack installations (distributed mode): one row per Slack team, found by team or by the
workspace bound to it. Tokens stay sealed here; services open them with the vault."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.store.models import SlackInstallation, Workspace


async def for_team(session: AsyncSession, team_id: str) -> SlackInstallation | None:
    result = await session.execute(
        select(SlackInstallation).where(SlackInstallation.team_id == team_id)
    )
    return result.scalar_one_or_none()


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

"""Which daily digests have been sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.store.models import Digest


async def sent(session: AsyncSession, workspace_id: int, local_date: str) -> bool:
    result = await session.execute(
        select(Digest.id).where(
            Digest.workspace_id == workspace_id, Digest.local_date == local_date
        )
    )
    return result.first() is not None


async def claim(session: AsyncSession, workspace_id: int, local_date: str, now: datetime) -> None:
    """Raises IntegrityError (at flush) when another process claimed this date first."""
    session.add(Digest(workspace_id=workspace_id, local_date=local_date, sent_at=now))
    await session.flush()


async def last_sent_before(
    session: AsyncSession, workspace_id: int, moment: datetime
) -> datetime | None:
    """When the workspace's previous daily digest went out (before `moment`, so not the one
    being claimed now)."""
    result = await session.execute(
        select(func.max(Digest.sent_at)).where(
            Digest.workspace_id == workspace_id, Digest.sent_at < moment
        )
    )
    return result.scalar_one_or_none()

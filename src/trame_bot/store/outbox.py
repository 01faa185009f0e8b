"""The outbox table: effects written with the change that causes them, claimed by a lease."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.store.models import OutboxMessage

PENDING, SENT, FAILED = "pending", "sent", "failed"


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: Mapping[str, Any],
    *,
    workspace_id: int | None,
    now: datetime,
) -> OutboxMessage:
    message = OutboxMessage(
        workspace_id=workspace_id,
        kind=kind,
        payload=dict(payload),
        state=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    return message


async def due(
    session: AsyncSession, now: datetime, limit: int, kinds: Collection[str]
) -> Sequence[int]:
    result = await session.execute(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.state == PENDING,
            OutboxMessage.kind.in_(list(kinds)),
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until <= now),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return result.scalars().all()


async def claim(
    session: AsyncSession, message_id: int, now: datetime, lease: timedelta
) -> OutboxMessage | None:
    """Take the row for one delivery attempt; None when another worker holds or sent it."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.state == PENDING,
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until <= now),
        )
        .values(locked_until=now + lease, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    if result.one_or_none() is None:
        return None
    return await session.get(OutboxMessage, message_id, populate_existing=True)


async def backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many rows wait, and since when the oldest waits."""
    result = await session.execute(
        select(func.count(), func.min(OutboxMessage.created_at)).where(
            OutboxMessage.state == PENDING
        )
    )
    count, oldest = result.one()
    return int(count), oldest


async def failed_count(session: AsyncSession, workspace_id: int) -> int:
    result = await session.execute(
        select(func.count()).where(
            OutboxMessage.workspace_id == workspace_id, OutboxMessage.state == FAILED
        )
    )
    return int(result.scalar_one())

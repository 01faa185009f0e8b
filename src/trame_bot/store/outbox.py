"""The outbox table: effects written with the change that causes them, claimed by a lease.

Slack rows can be held: in distributed mode they wait, unclaimed and uncounted, while their
workspace's Slack team has no connected installation (`installed_only`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.store import partial, pending
from trame_bot.store.models import OutboxMessage, SlackInstallation, Workspace, table

PENDING, SENT, FAILED = "pending", "sent", "failed"
_OUTBOX = table(OutboxMessage)


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: Mapping[str, Any],
    *,
    workspace_id: int | None,
    now: datetime,
) -> None:
    """Queued with the transaction's other rows (`store.pending`): a use case's messages (a
    card, its thread reply, a notice) go in one `executemany`, in the order they were queued,
    and nothing is sent unless the transaction commits."""
    pending.queue(
        session,
        _OUTBOX,
        {
            "workspace_id": workspace_id,
            "kind": kind,
            "payload": dict(payload),
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )


async def due(
    session: AsyncSession,
    now: datetime,
    limit: int,
    kinds: Collection[str],
    *,
    installed_only: Collection[str] = (),
) -> Sequence[int]:
    """Ids to deliver now, oldest first, in one query (the state/next_attempt_at index finds
    the candidates; held rows are filtered out there, so they never take a batch's place)."""
    result = await session.execute(
        select(OutboxMessage.id)
        .where(
            partial.state_is(OutboxMessage.state, PENDING),
            OutboxMessage.kind.in_(list(kinds)),
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until <= now),
            not_held(installed_only),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return result.scalars().all()


def not_held(installed_only: Collection[str]) -> ColumnElement[bool]:
    """A row of a kind in `installed_only` goes only while its workspace's Slack team has a
    connected installation (by primary key and the unique team id: two index lookups)."""
    if not installed_only:
        return true()
    connected = exists().where(
        Workspace.id == OutboxMessage.workspace_id,
        SlackInstallation.team_id == Workspace.slack_team_id,
        SlackInstallation.disconnected_at.is_(None),
    )
    return or_(OutboxMessage.kind.not_in(list(installed_only)), connected)


async def claim(
    session: AsyncSession, message_id: int, now: datetime, lease: timedelta
) -> OutboxMessage | None:
    """Take the row for one delivery attempt; None when another worker holds or sent it."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            partial.state_is(OutboxMessage.state, PENDING),
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until <= now),
        )
        .values(locked_until=now + lease, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    if result.one_or_none() is None:
        return None
    return await session.get(OutboxMessage, message_id, populate_existing=True)


async def claim_due(
    session: AsyncSession,
    now: datetime,
    limit: int,
    kinds: Collection[str],
    lease: timedelta,
    *,
    installed_only: Collection[str] = (),
) -> Sequence[OutboxMessage]:
    """Take up to `limit` due rows, oldest first, for one delivery attempt each (a lease, and
    the attempt counted), in two statements whatever their number. On PostgreSQL rows another
    worker is claiming are skipped rather than waited for, so concurrent workers take disjoint
    batches; SQLite has one writer at a time."""
    candidates = (
        select(OutboxMessage.id)
        .where(
            partial.state_is(OutboxMessage.state, PENDING),
            OutboxMessage.kind.in_(list(kinds)),
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until <= now),
            not_held(installed_only),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=OutboxMessage)
    )
    ids = list((await session.execute(candidates)).scalars())
    if not ids:
        return []
    claimed = (
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(ids),
                partial.state_is(OutboxMessage.state, PENDING),
                or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until <= now),
            )
            .values(locked_until=now + lease, attempts=OutboxMessage.attempts + 1)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
    ).scalars()
    result = await session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.id.in_(list(claimed)))
        .order_by(OutboxMessage.id)
        .execution_options(populate_existing=True)
    )
    return result.scalars().all()


async def mark_sent(session: AsyncSession, sent: Sequence[tuple[int, datetime]]) -> None:
    """Rows delivered (id, when), in one executemany: sent, lease and error cleared."""
    if not sent:
        return
    await session.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == bindparam("b_id"))
        .values(state=SENT, sent_at=bindparam("b_at"), locked_until=None, last_error=None),
        [{"b_id": message_id, "b_at": at} for message_id, at in sent],
    )


async def release(session: AsyncSession, ids: Sequence[int]) -> None:
    """Give back claimed rows that were not attempted (the worker stops, or their lease is too
    close to its end to start them): due again at once, the claim's attempt uncounted."""
    if not ids:
        return
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(list(ids)), partial.state_is(OutboxMessage.state, PENDING))
        .values(
            locked_until=None,
            attempts=case((OutboxMessage.attempts > 0, OutboxMessage.attempts - 1), else_=0),
        )
        .execution_options(synchronize_session=False)
    )


async def backlog(
    session: AsyncSession, *, installed_only: Collection[str] = ()
) -> tuple[int, datetime | None]:
    """How many rows wait to be sent, and since when the oldest waits (held rows aside)."""
    result = await session.execute(
        select(func.count(), func.min(OutboxMessage.created_at)).where(
            partial.state_is(OutboxMessage.state, PENDING), not_held(installed_only)
        )
    )
    count, oldest = result.one()
    return int(count), oldest


async def held(
    session: AsyncSession, installed_only: Collection[str], *, workspace_id: int | None = None
) -> int:
    """How many rows are held (of every workspace, or of one)."""
    if not installed_only:
        return 0
    query = select(func.count()).where(
        partial.state_is(OutboxMessage.state, PENDING), ~not_held(installed_only)
    )
    if workspace_id is not None:
        query = query.where(OutboxMessage.workspace_id == workspace_id)
    return int((await session.execute(query)).scalar_one())


async def failed_count(session: AsyncSession, workspace_id: int) -> int:
    result = await session.execute(
        select(func.count()).where(
            OutboxMessage.workspace_id == workspace_id,
            partial.state_is(OutboxMessage.state, FAILED),
        )
    )
    return int(result.scalar_one())

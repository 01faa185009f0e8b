"""Connector alerts: the posted message of each and what was done from its buttons."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.store.models import ConnectorAlert

NEEDS_ATTENTION, RECOVERED = "connector.needs_attention", "connector.recovered"


async def get(session: AsyncSession, alert_id: int, *, lock: bool = False) -> ConnectorAlert | None:
    query = select(ConnectorAlert).where(ConnectorAlert.id == alert_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def latest_outage(session: AsyncSession, connector_id: int) -> ConnectorAlert | None:
    """The newest "needs attention" alert of a connector: the outage a recovery closes."""
    result = await session.execute(
        select(ConnectorAlert)
        .where(ConnectorAlert.connector_id == connector_id, ConnectorAlert.event == NEEDS_ATTENTION)
        .order_by(ConnectorAlert.id.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def recovery_of(session: AsyncSession, outage_id: int) -> ConnectorAlert | None:
    result = await session.execute(
        select(ConnectorAlert)
        .where(ConnectorAlert.outage_id == outage_id, ConnectorAlert.event == RECOVERED)
        .order_by(ConnectorAlert.id.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def record_posted(session: AsyncSession, alert_id: int, channel: str, ts: str) -> bool:
    """Remember the alert's message; False if another delivery recorded one first (kept)."""
    result = await session.execute(
        update(ConnectorAlert)
        .where(ConnectorAlert.id == alert_id, ConnectorAlert.slack_ts.is_(None))
        .values(channel=channel, slack_ts=ts)
        .returning(ConnectorAlert.id)
        .execution_options(synchronize_session=False)
    )
    return result.one_or_none() is not None


async def mark_acted(
    session: AsyncSession, alert_id: int, by: str, at: datetime, on: list[dict[str, str]]
) -> bool:
    """Record who acted from the alert; False if someone already had (their record is kept)."""
    result = await session.execute(
        update(ConnectorAlert)
        .where(ConnectorAlert.id == alert_id, ConnectorAlert.acted_at.is_(None))
        .values(acted_by=by, acted_at=at, acted_on=on)
        .returning(ConnectorAlert.id)
        .execution_options(synchronize_session=False)
    )
    return result.one_or_none() is not None


async def list_for(
    session: AsyncSession, workspace_id: int, connector_id: int | None, limit: int
) -> list[ConnectorAlert]:
    """The workspace's alerts (of one connector, or all), newest first."""
    query = select(ConnectorAlert).where(ConnectorAlert.workspace_id == workspace_id)
    if connector_id is not None:
        query = query.where(ConnectorAlert.connector_id == connector_id)
    result = await session.execute(query.order_by(ConnectorAlert.id.desc()).limit(limit))
    return list(result.scalars())

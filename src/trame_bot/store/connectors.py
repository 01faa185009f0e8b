"""Connectors of a workspace."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.enums import Health
from trame_bot.errors import NotFound
from trame_bot.store.direct import Lookup, Statement
from trame_bot.store.functions import as_list, in_list
from trame_bot.store.models import Connector


async def find(session: AsyncSession, workspace_id: int, key: str) -> Connector | None:
    result = await session.execute(
        select(Connector).where(Connector.workspace_id == workspace_id, Connector.key == key)
    )
    return result.scalar_one_or_none()


async def get(session: AsyncSession, workspace_id: int, key: str) -> Connector:
    connector = await find(session, workspace_id, key)
    if connector is None:
        raise NotFound(f"no connector {key!r} in this workspace")
    return connector


async def by_account(session: AsyncSession, account: str) -> Connector | None:
    result = await session.execute(select(Connector).where(Connector.account == account))
    return result.scalar_one_or_none()


async def list_for(session: AsyncSession, workspace_id: int) -> Sequence[Connector]:
    result = await session.execute(
        select(Connector).where(Connector.workspace_id == workspace_id).order_by(Connector.key)
    )
    return result.scalars().all()


_connector = Connector.__table__
_HEALTH_AND_SCOPES = Statement(
    select(_connector.c.key, _connector.c.health, _connector.c.scopes).where(
        _connector.c.workspace_id == bindparam("workspace"), in_list(_connector.c.key, "keys")
    )
)


async def health_and_scopes(
    lookup: Lookup, workspace_id: int, keys: Iterable[str]
) -> tuple[dict[str, Health], dict[str, list[str]]]:
    """Health and granted scopes of those of `keys` that are this workspace's connectors, in
    one statement on the driver (`store.direct`, the keys bound as one list): what a run
    bringing steps of its own asks (the workflow's own come with it, `store.run_scope.for_run`)."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}, {}
    rows = await lookup(_HEALTH_AND_SCOPES, {"workspace": workspace_id, "keys": as_list(wanted)})
    return {key: health for key, health, _ in rows}, {key: scopes for key, _, scopes in rows}


async def health_of(
    session: AsyncSession, workspace_id: int, keys: Iterable[str]
) -> dict[str, Health]:
    """Health of those of `keys` that are this workspace's connectors; others are absent."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    result = await session.execute(
        select(Connector.key, Connector.health).where(
            Connector.workspace_id == workspace_id, Connector.key.in_(wanted)
        )
    )
    return dict(result.all())


@dataclass(frozen=True)
class SweepState:
    """What the sweep judges a connector by, read as plain rows: tens of thousands of ORM
    objects per sweep cost more than the sweep's own work."""

    id: int
    health: Health
    last_error: str | None
    last_reported_at: datetime | None
    last_checked_at: datetime | None
    expires_at: datetime | None


async def sweep_targets(session: AsyncSession) -> list[tuple[int, str | None]]:
    """(id, health_url) of every connector: those not healthy first (their URLs are the
    likeliest to hang again), then by id."""
    result = await session.execute(
        select(Connector.id, Connector.health_url).order_by(
            Connector.health == Health.OK, Connector.id
        )
    )
    return [(connector_id, url) for connector_id, url in result.all()]


async def sweep_states(session: AsyncSession, ids: Sequence[int]) -> list[SweepState]:
    result = await session.execute(
        select(
            Connector.id,
            Connector.health,
            Connector.last_error,
            Connector.last_reported_at,
            Connector.last_checked_at,
            Connector.expires_at,
        ).where(Connector.id.in_(list(ids)))
    )
    return [SweepState(*row) for row in result.all()]


async def claim_probes(
    session: AsyncSession, ids: Sequence[int], now: datetime, lease: timedelta, since: datetime
) -> list[int]:
    """Take the probe lease of those `ids` no other probe holds and none has checked since
    `since` (when the claiming sweep began); returns the ones taken."""
    result = await session.execute(
        update(Connector)
        .where(
            Connector.id.in_(list(ids)),
            or_(Connector.probing_until.is_(None), Connector.probing_until <= now),
            or_(Connector.last_checked_at.is_(None), Connector.last_checked_at < since),
        )
        .values(probing_until=now + lease)
        .returning(Connector.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def probed(session: AsyncSession, ids: Sequence[int], now: datetime) -> None:
    """Record a probe round: checked now, lease released."""
    await session.execute(
        update(Connector)
        .where(Connector.id.in_(list(ids)))
        .values(last_checked_at=now, probing_until=None)
        .execution_options(synchronize_session=False)
    )


async def locked(session: AsyncSession, ids: Sequence[int]) -> Sequence[Connector]:
    """The rows, locked until the transaction ends (PostgreSQL): transitions happen once."""
    result = await session.execute(
        select(Connector)
        .where(Connector.id.in_(list(ids)))
        .order_by(Connector.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.scalars().all()


async def count_unhealthy(session: AsyncSession) -> int:
    result = await session.execute(select(func.count()).where(Connector.health != Health.OK))
    return int(result.scalar_one())


WIDENED_IN = "connector.changed"
"""The audit action whose data holds `widened` (scope words) when a change widened the scopes."""

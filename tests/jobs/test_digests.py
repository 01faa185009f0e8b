"""The daily digest: at the workspace's local time, once per local date, across DST and downtime."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Health, Status
from trame_bot.domain.views import ConnectorLine, Overview, WorkflowLine
from trame_bot.errors import Forbidden
from trame_bot.sandbox.block_kit import MAX_BLOCK_TEXT_TOTAL, block_errors, block_text_length
from trame_bot.services import digests, workspaces
from trame_bot.services.context import Context
from trame_bot.slack.blocks.digest import digest_message
from trame_bot.store.database import Database
from trame_bot.store.models import Digest, OutboxMessage


async def posted(deps: Deps) -> list[dict[str, object]]:
    async with deps.db.reading() as session:
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        return [r.payload["data"] for r in rows if r.payload.get("event") == "digest"]


async def paris(deps: Deps, digest_time: str = "09:00") -> None:
    await f.workspace(deps)
    await workspaces.configure_workspace(
        deps.ctx,
        "acme",
        workspaces.WorkspaceSettings(timezone="Europe/Paris", digest_time=digest_time),
        Actor.cli(),
    )


async def test_sent_at_local_time_once_per_day(deps: Deps, clock: FakeClock) -> None:
    clock.set(datetime(2026, 6, 10, 6, 55, tzinfo=UTC))  # 08:55 in Paris (summer time)
    await paris(deps)
    assert await digests.send_due_digests(deps.ctx) == 0, "nothing owed before the first 09:00"
    clock.advance(timedelta(minutes=4))
    assert await digests.send_due_digests(deps.ctx) == 0
    clock.advance(timedelta(minutes=1))  # 09:00 in Paris
    assert await digests.send_due_digests(deps.ctx) == 1
    for _ in range(5):
        clock.advance(timedelta(minutes=30))
        assert await digests.send_due_digests(deps.ctx) == 0
    assert [d["date"] for d in await posted(deps)] == ["2026-06-10"]


@pytest.mark.parametrize(
    ("start", "zone", "at"),
    [
        (
            datetime(2026, 3, 27, 12, 0, tzinfo=UTC),
            "Europe/Paris",
            "02:30",
        ),  # 02:30 does not exist on the 29th
        (
            datetime(2026, 10, 23, 12, 0, tzinfo=UTC),
            "Europe/Paris",
            "02:30",
        ),  # 02:30 happens twice on the 25th
        (datetime(2026, 3, 6, 12, 0, tzinfo=UTC), "America/New_York", "09:00"),
    ],
)
async def test_exactly_one_digest_per_local_date_across_dst(
    deps: Deps, clock: FakeClock, start: datetime, zone: str, at: str
) -> None:
    clock.set(start)
    await f.workspace(deps)
    await workspaces.configure_workspace(
        deps.ctx, "acme", workspaces.WorkspaceSettings(timezone=zone, digest_time=at), Actor.cli()
    )
    for _ in range(4 * 24 * 6):  # four days in 10-minute steps
        await digests.send_due_digests(deps.ctx)
        clock.advance(timedelta(minutes=10))
    dates = [d["date"] for d in await posted(deps)]
    assert len(dates) == len(set(dates)) == 4, dates


async def test_after_downtime_a_missed_digest_is_sent_late_once(
    deps: Deps, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 6, 10, 6, 0, tzinfo=UTC))
    await paris(deps)
    clock.advance(timedelta(hours=4))
    assert await digests.send_due_digests(deps.ctx) == 1
    clock.advance(timedelta(days=3, hours=-5))  # down for three days; back before 09:00 Paris
    assert await digests.send_due_digests(deps.ctx) == 1
    assert await digests.send_due_digests(deps.ctx) == 0
    assert [d["date"] for d in await posted(deps)] == ["2026-06-10", "2026-06-12"]


async def test_two_schedulers_at_once_send_one_digest(deps: Deps, clock: FakeClock) -> None:
    await paris(deps)
    clock.advance(timedelta(days=1))
    others = [Database(deps.db.url) for _ in range(3)]
    try:
        sent = await asyncio.gather(
            digests.send_due_digests(deps.ctx),
            *(digests.send_due_digests(Context(db, clock)) for db in others),
        )
    finally:
        for db in others:
            await db.dispose()
    assert sum(sent) == 1
    async with deps.db.reading() as session:
        assert len((await session.execute(select(Digest))).scalars().all()) == 1


async def test_content_names_connectors_workflows_pending_and_the_chain_head(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps)
    await f.request(deps)
    from trame_bot.domain.health import Report
    from trame_bot.services import connectors

    await connectors.report_health(
        deps.ctx, "acme", "crm", Report.ERROR, "token revoked", Actor.api("engine")
    )
    await digests.send_digest_now(deps.ctx, "acme", Actor.slack(f.ADMIN))
    (data,) = await posted(deps)
    assert data["unhealthy_total"] == 1
    assert data["pending_total"] == 1
    (crm,) = data["unhealthy"]  # type: ignore[misc]
    assert crm["workflows"] == [{"name": "Invoice sync", "status": "pilot"}]
    assert len(str(data["audit_head"])) == 64
    with pytest.raises(Forbidden):
        await digests.send_digest_now(deps.ctx, "acme", Actor.slack(f.MEMBER))


NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("count", [0, 1, 2000])
def test_digest_message_is_valid_block_kit_for_any_size(count: int) -> None:
    view = Overview(
        workspace_key="acme",
        workspace_name="Acme <!channel>",
        workflows=tuple(
            WorkflowLine(
                f"wf{i}",
                f"Workflow {i}",
                Status.LIVE,
                1,
                False,
                0,
                (),
                tuple(f"c{j}" for j in range(i, count, 50)),
            )
            for i in range(50)
        ),
        connectors=tuple(
            ConnectorLine(
                f"c{i}",
                "salesforce",
                Health.NEEDS_ATTENTION,
                NOW - timedelta(hours=i),
                "x" * 500,
                None,
            )
            for i in range(count)
        ),
        pending=(),
        failed_deliveries=0,
        audit_head="a" * 64,
        audit_events=12,
    )
    text, blocks = digest_message(digests.digest_data(view, "2026-06-10"))
    assert block_errors(blocks) == []
    assert block_text_length(blocks) <= MAX_BLOCK_TEXT_TOTAL
    assert "<!channel>" not in text
    assert ("All clear" in text) == (count == 0)

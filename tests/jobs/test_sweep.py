"""The health sweep: probes, expiring credentials, silent connectors; each transition once."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import aiohttp
from sqlalchemy import select

from tests import factories as f
from tests.jobs.conftest import ProbeTarget
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.documents import ConnectorDoc
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Health, Status
from trame_bot.domain.health import Report
from trame_bot.probes import HttpProbe
from trame_bot.services import connectors, workflow_status
from trame_bot.services.context import Context
from trame_bot.services.sweep import sweep
from trame_bot.store.database import Database
from trame_bot.store.models import AuditEvent, Connector, OutboxMessage


async def health(deps: Deps) -> dict[str, Health]:
    return {c.key: c.health for c in await connectors.list_connectors(deps.ctx, "acme")}


async def alerts(deps: Deps) -> list[dict[str, object]]:
    async with deps.db.reading() as session:
        rows = (
            await session.execute(select(OutboxMessage).where(OutboxMessage.kind == "slack.post"))
        ).scalars()
        return [r.payload for r in rows if str(r.payload.get("event", "")).startswith("connector.")]


async def transitions(deps: Deps) -> list[str]:
    async with deps.db.reading() as session:
        rows = await session.execute(
            select(AuditEvent.summary)
            .where(AuditEvent.action == "connector.health_changed")
            .order_by(AuditEvent.seq)
        )
        return list(rows.scalars())


async def test_a_failing_probe_alerts_once_naming_live_workflows_first_and_recovery_once(
    deps: Deps, clock: FakeClock, target: ProbeTarget, probe: HttpProbe
) -> None:
    await f.workspace(deps)
    await f.connector(deps, "acme", "crm", health_url=target.url("fail-crm"))
    await f.connector(deps, "acme", "sheets", health_url=target.url("ok-sheets"))
    await f.workflow(deps, key="a-draft", status="draft")
    await f.workflow(deps, key="z-live")
    await workflow_status.change_status(
        deps.ctx,
        "acme",
        "z-live",
        Status.LIVE,
        Actor.cli(),
        sign_off=workflow_status.SignOff("Jane", "mail"),
        rollback_plan="pause",
    )
    for _ in range(3):
        await sweep(deps.ctx, probe)
        clock.advance(timedelta(minutes=5))
    assert await health(deps) == {"crm": Health.NEEDS_ATTENTION, "sheets": Health.OK}
    (alert,) = await alerts(deps)
    assert alert["event"] == "connector.needs_attention"
    assert [w["key"] for w in alert["data"]["workflows"]] == ["z-live", "a-draft"]  # type: ignore[index]
    assert "answered 503" in str(alert["data"]["error"])  # type: ignore[index]

    await connectors.apply_connector(
        deps.ctx,
        "acme",
        ConnectorDoc(
            key="crm", toolkit="salesforce", account="acme/crm", health_url=target.url("ok-crm")
        ),
        Actor.cli(),
    )
    for _ in range(2):
        await sweep(deps.ctx, probe)
    assert (await health(deps))["crm"] is Health.OK
    assert [a["event"] for a in await alerts(deps)] == [
        "connector.needs_attention",
        "connector.recovered",
    ]
    assert await transitions(deps) == [
        "connector crm: ok → needs_attention",
        "connector crm: needs_attention → ok",
    ]


async def test_expiring_and_expired_credentials(
    deps: Deps, clock: FakeClock, probe: HttpProbe
) -> None:
    await f.workspace(deps)
    now = clock.now()
    await f.connector(deps, "acme", "soon", expires_at=now + timedelta(days=2))
    await f.connector(deps, "acme", "later", expires_at=now + timedelta(days=30))
    await f.connector(deps, "acme", "gone", expires_at=now - timedelta(minutes=1))
    await sweep(deps.ctx, probe)
    assert await health(deps) == {
        "soon": Health.NEEDS_ATTENTION,
        "later": Health.OK,
        "gone": Health.DISCONNECTED,
    }
    listed = {c.key: c.last_error for c in await connectors.list_connectors(deps.ctx, "acme")}
    assert "credentials expire" in str(listed["soon"])
    assert "credentials expired" in str(listed["gone"])


async def test_silent_connectors_need_attention_until_the_engine_reports(
    deps: Deps, clock: FakeClock, probe: HttpProbe
) -> None:
    await f.workspace(deps)
    await f.connector(deps, "acme", "crm")
    clock.advance(timedelta(hours=23))
    await sweep(deps.ctx, probe)
    assert (await health(deps))["crm"] is Health.OK
    clock.advance(timedelta(hours=2))
    await sweep(deps.ctx, probe)
    assert (await health(deps))["crm"] is Health.NEEDS_ATTENTION
    await connectors.report_health(deps.ctx, "acme", "crm", Report.OK, None, Actor.api("engine"))
    await sweep(deps.ctx, probe)
    assert (await health(deps))["crm"] is Health.OK


async def test_a_target_that_never_answers_is_bounded_by_the_timeout(
    deps: Deps, target: ProbeTarget
) -> None:
    await f.workspace(deps)
    for i in range(20):
        await f.connector(deps, "acme", f"hang-{i}", health_url=target.url(f"hang-{i}"))
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        result = await sweep(deps.ctx, HttpProbe(session, timeout=0.3))
    assert time.monotonic() - started < 5, "probes run concurrently, each bounded"
    assert result.probed == 20
    assert set((await health(deps)).values()) == {Health.NEEDS_ATTENTION}
    errors = {c.last_error for c in await connectors.list_connectors(deps.ctx, "acme")}
    assert errors == {"health check did not answer within 0 s"} or all(
        "did not answer" in str(e) for e in errors
    )


async def test_refused_credentials_mean_disconnected(
    deps: Deps, target: ProbeTarget, probe: HttpProbe
) -> None:
    await f.workspace(deps)
    await f.connector(deps, "acme", "crm", health_url=target.url("auth-crm"))
    await sweep(deps.ctx, probe)
    assert (await health(deps))["crm"] is Health.DISCONNECTED


async def test_two_sweeps_at_once_probe_each_connector_once_and_transition_once(
    deps: Deps, target: ProbeTarget
) -> None:
    await f.workspace(deps)
    for i in range(30):
        await f.connector(deps, "acme", f"c{i}", health_url=target.url(f"fail-{i}"))
    other = Database(deps.db.url)
    # A generous timeout: the target shares this test's event loop with both sweeps, and every
    # probe must reach it for the hit count to mean something.
    async with aiohttp.ClientSession() as session:
        probe = HttpProbe(session, timeout=10)
        try:
            first, second = await asyncio.gather(
                sweep(deps.ctx, probe), sweep(Context(other, deps.clock), probe)
            )
        finally:
            await other.dispose()
    assert first.probed + second.probed == 30, "the lease keeps two probes of one connector apart"
    assert sum(target.hits.values()) == 30
    assert len(await transitions(deps)) == 30
    assert len(await alerts(deps)) == 30


async def test_two_thousand_connectors(deps: Deps, probe: HttpProbe) -> None:
    ws = await f.workspace(deps, members=())
    async with deps.db.transaction() as session:
        now = deps.clock.now()
        session.add_all(
            Connector(
                workspace_id=ws.id,
                key=f"c{i:04d}",
                toolkit="salesforce",
                account=f"acct-{i}",
                scopes=["read"],
                health=Health.OK,
                health_since=now,
                created_at=now,
                updated_at=now,
                last_reported_at=now - timedelta(days=2) if i % 2 else now,
            )
            for i in range(2000)
        )
    result = await sweep(deps.ctx, probe)
    assert result.transitions == 1000
    assert len(await alerts(deps)) == 1000

"""The sweep's probe slots against a real health server on loopback: hung URLs give their slots
back, probes open at once stay under the cap, and the likeliest to hang go first.

The server holds every `hang-…` request until the test releases it, so nothing here waits on a
clock: each step waits for the server to have seen something (bounded by a generous guard).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from aiohttp import web

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.enums import Health
from trame_bot.probes import HttpProbe, probe_session
from trame_bot.services import connectors
from trame_bot.services.sweep import SweepSettings, sweep

GUARD = 30.0
"""Seconds a step may take before the test fails instead of hanging (never a measurement)."""


@dataclass
class HealthServer:
    base: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    """Set: held `hang-…` requests answer 503, and later ones at once."""
    arrivals: list[str] = field(default_factory=list)
    answered_ok: int = 0
    hanging_now: int = 0
    open_now: int = 0
    most_open: int = 0
    """Requests in flight at once, each on its own connection: what the cap bounds. Counted per
    request rather than per socket, since a closing socket's end can reach the server after the
    client's next connection does."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(GUARD):
            while not done():
                self.changed.clear()
                await self.changed.wait()

    async def answer(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.arrivals.append(name)
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        self.changed.set()
        try:
            if name.startswith("hang"):
                self.hanging_now += 1
                self.changed.set()
                try:
                    await self.release.wait()
                finally:
                    self.hanging_now -= 1
                return web.Response(status=503)
            if name.startswith("fail"):
                return web.Response(status=503)
            self.answered_ok += 1
            return web.Response(text="ok")
        finally:
            self.open_now -= 1
            self.changed.set()


@pytest.fixture
async def server() -> AsyncIterator[HealthServer]:
    health = HealthServer()
    app = web.Application()
    app.router.add_get("/{name}", health.answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    health.base = f"http://{host}:{port}"
    yield health
    health.release.set()
    await runner.cleanup()


async def add(deps: Deps, server: HealthServer, names: list[str]) -> None:
    for name in names:
        await f.connector(deps, "acme", name, health_url=server.url(name))


async def health(deps: Deps) -> dict[str, Health]:
    return {c.key: c.health for c in await connectors.list_connectors(deps.ctx, "acme")}


def settings(concurrency: int, max_open: int) -> SweepSettings:
    return SweepSettings(
        concurrency=concurrency,
        max_open_probes=max_open,
        soft_deadline=timedelta(milliseconds=10),
    )


async def test_hung_urls_give_their_slots_back_and_every_healthy_one_is_probed_meanwhile(
    deps: Deps, server: HealthServer
) -> None:
    await f.workspace(deps)
    hung = [f"hang-{n}" for n in range(8)]  # more than the slots, and first in line
    healthy = [f"ok-{n}" for n in range(40)]
    await add(deps, server, hung + healthy)
    chosen = settings(concurrency=3, max_open=20)
    async with probe_session(chosen.max_open_probes) as http:
        # A timeout no step reaches: the hung URLs answer when the test releases them.
        running = asyncio.create_task(sweep(deps.ctx, HttpProbe(http, timeout=120), chosen))
        await server.until(lambda: server.answered_ok == len(healthy))
        assert server.hanging_now == len(hung), "every hung URL is still held open"
        assert not running.done()
        # A hung probe is counted slow when its soft deadline passes while it is open: the
        # last one may have started only just before the last healthy answer came.
        await asyncio.sleep(10 * chosen.soft_deadline.total_seconds())
        server.release.set()
        result = await running
    assert result.probed == len(hung) + len(healthy)
    assert result.slow >= len(hung)
    found = await health(deps)
    assert {found[name] for name in healthy} == {Health.OK}
    assert {found[name] for name in hung} == {Health.NEEDS_ATTENTION}


async def test_probes_open_at_once_never_exceed_the_cap(deps: Deps, server: HealthServer) -> None:
    await f.workspace(deps)
    hung = [f"hang-{n}" for n in range(10)]
    healthy = [f"ok-{n}" for n in range(20)]
    await add(deps, server, hung + healthy)
    chosen = settings(concurrency=3, max_open=6)
    async with probe_session(chosen.max_open_probes) as http:
        running = asyncio.create_task(sweep(deps.ctx, HttpProbe(http, timeout=120), chosen))
        await server.until(lambda: server.hanging_now == chosen.max_open_probes)
        server.release.set()
        result = await running
    assert server.most_open == chosen.max_open_probes, "at the cap, never past it"
    assert result.most_open == chosen.max_open_probes
    assert result.probed == len(hung) + len(healthy)
    assert server.answered_ok == len(healthy)


async def test_a_hung_url_past_its_soft_deadline_is_reported_after_the_full_timeout(
    deps: Deps, server: HealthServer
) -> None:
    await f.workspace(deps)
    await add(deps, server, [f"hang-{n}" for n in range(4)])
    chosen = settings(concurrency=2, max_open=10)
    async with probe_session(chosen.max_open_probes) as http:
        result = await sweep(deps.ctx, HttpProbe(http, timeout=0.3), chosen)
    assert result.slow == 4
    listed = await connectors.list_connectors(deps.ctx, "acme")
    assert {c.last_error for c in listed} == {"health check did not answer within 0.3 s"}
    assert {c.health for c in listed} == {Health.NEEDS_ATTENTION}


async def test_connectors_not_healthy_are_probed_first(
    deps: Deps, clock: FakeClock, server: HealthServer
) -> None:
    await f.workspace(deps)
    names = [f"fail-{n}" if n in (3, 7) else f"ok-{n}" for n in range(10)]
    await add(deps, server, names)
    one_at_a_time = settings(concurrency=1, max_open=1)
    async with probe_session(one_at_a_time.max_open_probes) as http:
        probe = HttpProbe(http, timeout=GUARD)
        await sweep(deps.ctx, probe, one_at_a_time)
        assert server.arrivals == names, "no history: by id"
        server.arrivals.clear()
        clock.advance(timedelta(minutes=5))
        await sweep(deps.ctx, probe, one_at_a_time)
    assert server.arrivals == ["fail-3", "fail-7"] + [n for n in names if n.startswith("ok")]

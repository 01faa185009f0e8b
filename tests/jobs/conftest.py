"""A health-check target on loopback: answers ok, fails, refuses credentials, or never answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from trame_bot.probes import HttpProbe, probe_session
from trame_bot.services.sweep import SweepSettings


@dataclass
class ProbeTarget:
    base: str
    hits: dict[str, int]

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"


@pytest.fixture
async def target() -> AsyncIterator[ProbeTarget]:
    hits: dict[str, int] = {}
    release = asyncio.Event()

    async def answer(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        hits[name] = hits.get(name, 0) + 1
        if name.startswith("ok"):
            return web.Response(text="ok")
        if name.startswith("auth"):
            return web.Response(status=401)
        if name.startswith("hang"):
            await release.wait()
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/{name}", answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield ProbeTarget(str(server.make_url("")).rstrip("/"), hits)
    release.set()
    await server.close()


@pytest.fixture
async def probe() -> AsyncIterator[HttpProbe]:
    async with probe_session(SweepSettings().max_open_probes) as session:
        # Roomy: the targets share the tests' event loop, which a loaded CI machine slows down.
        yield HttpProbe(session, timeout=3.0)

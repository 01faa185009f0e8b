"""The sandbox as `trame-bot serve --sandbox` serves it, in this process on a loopback port,
for the tests of tests/sandbox: its page's intents, its engine API key, and its fake Slack."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.harness import eventually
from trame_bot.bootstrap import Deps, build
from trame_bot.config import Settings
from trame_bot.sandbox import seed
from trame_bot.sandbox.app import API_KEYS, RELAY, build_sandbox_app, loopback_url, sandbox_settings
from trame_bot.sandbox.fake_slack import FakeSlack
from trame_bot.sandbox.relay import Relay
from trame_bot.services import installations
from trame_bot.store import outbox
from trame_bot.store.migrate import upgrade_async

Json = dict[str, Any]


@dataclass
class Sandbox:
    url: str
    deps: Deps
    app: web.Application
    session: aiohttp.ClientSession
    api_key: str

    @property
    def fake(self) -> FakeSlack:
        return self.relay.fake

    @property
    def relay(self) -> Relay:
        return self.app[RELAY]

    async def post(self, intent: str, **body: Any) -> Json:
        async with self.session.post(f"{self.url}/sandbox/{intent}", json=body) as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())

    async def state(self, user: str) -> Json:
        async with self.session.get(f"{self.url}/sandbox/state", params={"user": user}) as r:
            assert r.status == 200
            return dict(await r.json())

    async def approvals(self, user: str) -> str:
        return str((await self.state(user))["channels"][0]["html"])

    async def api(
        self, method: str, path: str, body: Json | None = None, *, key: str | None = None
    ) -> tuple[int, Json]:
        """The engine API with Acme's key, or ``key`` (another workspace's)."""
        headers = {"Authorization": f"Bearer {key or self.api_key}"}
        async with self.session.request(
            method, f"{self.url}/api/v1{path}", json=body, headers=headers
        ) as response:
            return response.status, dict(await response.json())

    async def request_run(
        self, workflow: str, by: str = seed.MEMBER.id, *, key: str | None = None
    ) -> str:
        body = {"requested_by": by}
        status, run = await self.api("POST", f"/workflows/{workflow}/runs", body, key=key)
        assert (status, run["state"]) == (201, "pending")
        return str(run["id"])

    async def card_of(self, run_id: str, channel: str = seed.APPROVALS) -> str:
        """The ts of the run's card in ``channel``, once the outbox has posted it."""

        async def posted() -> bool:
            return any(run_id in str(m.blocks) for m in self.fake.messages(channel))

        await eventually(posted)
        return next(m.ts for m in self.fake.messages(channel) if run_id in str(m.blocks))

    async def run_state(self, run_id: str, *, key: str | None = None) -> str:
        status, run = await self.api("GET", f"/runs/{run_id}?wait=5", key=key)
        assert status == 200
        return str(run["state"])


@asynccontextmanager
async def running(folder: Path) -> AsyncIterator[Sandbox]:
    """What `trame-bot serve --sandbox` serves, on the database in ``folder``, once the
    integrator's Slack is installed (the sandbox does it right after it starts listening)."""
    database_url = f"sqlite+aiosqlite:///{folder / 'sandbox.db'}"
    await upgrade_async(database_url)
    # The socket is bound before the app is built (the bot's client needs the URL) and kept,
    # so no other process can take the port in between.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    url = loopback_url("127.0.0.1", int(listener.getsockname()[1]))
    deps = build(sandbox_settings(Settings(database_url=database_url), url))
    app = await build_sandbox_app(deps, url)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.SockSite(runner, listener).start()

    try:
        async with aiohttp.ClientSession() as session:
            await _installed(deps, seed.WORKSPACE)  # the integrator's Slack, once listening
            yield Sandbox(url, deps, app, session, app[API_KEYS][seed.WORKSPACE])
        # The fake Slack is served by this same server: let the bot say what it still has to
        # say before the server stops listening, or the outbox worker retries into a closed port.
        await _delivered(deps)
    finally:
        await runner.cleanup()
        await deps.close()


async def _installed(deps: Deps, workspace: str) -> None:
    async def connected() -> bool:
        return (await installations.slack_connection(deps.ctx, workspace)).connected

    await eventually(connected, within=20)


async def _delivered(deps: Deps) -> None:
    async def empty() -> bool:
        async with deps.db.reading() as session:
            count, _ = await outbox.backlog(session)
        return count == 0

    await eventually(empty, within=10)

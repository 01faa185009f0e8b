"""The outbox in processes of its own: `serve --no-outbox` only queues, and two
`trame-bot outbox` processes on the same database deliver every message once."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from dataclasses import replace

import aiohttp
from sqlalchemy import select

from tests import factories as f
from tests.harness import eventually
from tests.reliability.processes import ServerProcess, trame_bot
from trame_bot.bootstrap import Deps
from trame_bot.config import Settings
from trame_bot.domain.enums import Status
from trame_bot.sandbox.fake_slack import RunningFake
from trame_bot.sandbox.slack_requests import SlackRequests
from trame_bot.services import workflows
from trame_bot.store.models import OutboxMessage


async def outbox_rows(deps: Deps) -> list[OutboxMessage]:
    async with deps.db.reading() as session:
        return list((await session.execute(select(OutboxMessage))).scalars())


async def running(worker: asyncio.subprocess.Process) -> None:
    """Until the process says it runs (its SIGTERM handler is in place from then on)."""
    assert worker.stderr is not None
    while b"outbox worker running" not in await asyncio.wait_for(worker.stderr.readline(), 30):
        assert worker.returncode is None


async def test_two_outbox_processes_deliver_what_a_no_outbox_server_queued(
    deps: Deps, settings: Settings, slack_api: RunningFake, database_url: str
) -> None:
    ws = await f.governed_workspace(deps)
    await f.workflow(deps)
    for _ in range(5):
        await f.request(deps)  # a pilot's run: its approval card waits in the outbox
    settings = replace(settings, slack_api_url=slack_api.api_url)
    server = ServerProcess(settings, database_url, extra=["--no-outbox"])
    await server.start()
    try:
        pause = SlackRequests(settings.slack_signing_secret or "").command(
            "pause invoice-sync client asked", user=f.OWNER, channel=ws.approvals_channel
        )
        async with (
            aiohttp.ClientSession() as http,
            http.post(server.url + "/slack/events", data=pause.body, headers=pause.headers) as r,
        ):
            assert r.status == 200, await r.text()

        async def paused() -> bool:
            found = await workflows.get_workflow(deps.ctx, "acme", "invoice-sync")
            return found.status is Status.PAUSED

        await eventually(paused)
    finally:
        await server.stop()
    queued = await outbox_rows(deps)
    assert len(queued) > 5
    assert all(row.state == "pending" for row in queued)
    assert slack_api.fake.calls_to("chat.postMessage") == [], "the server delivered nothing"

    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": settings.slack_bot_token or "",
        "SLACK_SIGNING_SECRET": settings.slack_signing_secret or "",
        "SLACK_API_URL": slack_api.api_url,
        "LOG_LEVEL": "INFO",
    }
    workers = [await trame_bot("outbox", "--poll", "0.05", env=env) for _ in range(2)]
    try:
        for worker in workers:
            await running(worker)

        async def delivered() -> bool:
            return all(row.state != "pending" for row in await outbox_rows(deps))

        await eventually(delivered, within=30)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        outputs = [await asyncio.wait_for(w.communicate(), timeout=20) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    sent = await outbox_rows(deps)
    assert {(row.state, row.attempts) for row in sent} == {("sent", 1)}, sent
    # Each run: its card (posted as it is now: cancelled), a reply in the card's thread and a
    # DM to the requester; and the pause's notice in the channel. None twice.
    posted = Counter(
        (str(call.args["channel"]), str(call.args.get("thread_ts")), str(call.args.get("text")))
        for call in slack_api.fake.calls_to("chat.postMessage")
    )
    cards = [m for m in slack_api.fake.messages(ws.approvals_channel) if m.thread_ts is None]
    assert len(cards) == 5 + 1, cards
    assert sum(posted.values()) == 3 * 5 + 1, posted

"""Driving the real server over HTTP: signed Slack requests in, the recording fake Slack out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from trame_bot.bootstrap import Deps
from trame_bot.domain.enums import RunState
from trame_bot.sandbox.fake_slack import FakeSlack, Message
from trame_bot.sandbox.slack_requests import SignedRequest, SlackRequests
from trame_bot.slack.ids import Action


@dataclass
class Answer:
    status: int
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """The ephemeral text an ack carried (commands), or the raw body."""
        try:
            return str(json.loads(self.body).get("text", ""))
        except ValueError:
            return self.body


@dataclass
class Bot:
    deps: Deps
    url: str
    session: aiohttp.ClientSession
    slack: SlackRequests
    fake: FakeSlack
    fake_url: str
    server: TestServer

    async def send(self, request: SignedRequest) -> Answer:
        async with self.session.post(
            self.url, data=request.body, headers=request.headers
        ) as response:
            return Answer(response.status, await response.text())

    async def command(self, text: str, *, user: str, channel: str) -> Answer:
        request = self.slack.command(
            text,
            user=user,
            channel=channel,
            response_url=self.fake.response_url(self.fake_url, f"cmd-{user}"),
        )
        return await self.send(request)

    async def click(
        self, action: Action, run_id: str, *, user: str, channel: str, ts: str = "1.000001"
    ) -> Answer:
        request = self.slack.block_action(
            user=user,
            action_id=action.value,
            value=run_id,
            block_id="run_actions",
            channel=channel,
            message_ts=ts,
            response_url=self.fake.response_url(self.fake_url, f"act-{user}"),
        )
        return await self.send(request)

    async def delivered(self) -> None:
        """Wait until the outbox is empty (everything the bot meant to say has been said)."""
        from trame_bot.store import outbox

        async def empty() -> bool:
            async with self.deps.db.reading() as session:
                count, _ = await outbox.backlog(session)
            return count == 0

        await eventually(empty)

    async def state_of(self, run_id: str, workspace: str = "acme") -> RunState:
        from trame_bot.services import runs

        found, _ = await runs.get_run(self.deps.ctx, workspace, run_id)
        return found.state

    async def settles(self, run_id: str, workspace: str = "acme") -> RunState:
        """Clicks are acked first and processed right after: wait for the outcome."""

        async def decided() -> bool:
            return (await self.state_of(run_id, workspace)).is_final

        await eventually(decided)
        await self.delivered()
        return await self.state_of(run_id, workspace)

    async def told(self, user: str, count: int = 1) -> list[str]:
        """The ephemeral messages `user` has been shown, once there are `count` of them."""

        async def arrived() -> bool:
            return len(self.ephemerals(user)) >= count

        await eventually(arrived)
        return self.ephemerals(user)

    def ephemerals(self, user: str) -> list[str]:
        return [
            str(c.args["text"])
            for c in self.fake.calls_to("chat.postEphemeral")
            if c.args.get("user") == user
        ]

    def card(self, channel: str) -> Message:
        cards = [
            m
            for m in self.fake.messages(channel)
            if m.thread_ts is None
            and m.blocks
            and any(
                b.get("block_id") == "run_actions"
                or "Approval needed" in json.dumps(b)
                or b["type"] == "header"
                for b in m.blocks
            )
        ]
        assert cards, f"no card in {channel}"
        return cards[-1]

    def thread(self, channel: str, ts: str) -> list[Message]:
        return [m for m in self.fake.messages(channel) if m.thread_ts == ts]


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def receiving(
    path: str, handle: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> AsyncIterator[str]:
    """A loopback HTTP endpoint (a webhook receiver) answering POSTs to `path`; yields its URL."""
    app = web.Application()
    app.router.add_post(path, handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url(path))
    finally:
        await server.close()

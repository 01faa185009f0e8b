"""The fake's Socket Mode through slack_sdk's real aiohttp SocketModeClient, which finds the
websocket through ``apps.connections.open``: hello, envelopes, acks with response payloads,
``disconnect`` and dropped connections (unacked envelopes sent again)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from trame_bot.sandbox.fake_slack import FakeSlack, RunningFake, serve
from trame_bot.sandbox.slack_requests import SlackRequests

TOKEN = "xoxb-fake-token"
APP_TOKEN = "xapp-1-A0APP-1-fake"

Json = dict[str, Any]
Listener = Callable[[SocketModeClient, SocketModeRequest], Awaitable[None]]


@pytest.fixture
def fake() -> FakeSlack:
    return FakeSlack(TOKEN, app_token=APP_TOKEN)


@pytest.fixture
async def running(fake: FakeSlack) -> AsyncIterator[RunningFake]:
    async with await serve(fake) as running:
        yield running


class App:
    """A Socket Mode app: acks what ``answer`` says, and keeps every frame it received."""

    def __init__(self, running: RunningFake, answer: Callable[[SocketModeRequest], Json | None]):
        self.client = SocketModeClient(
            app_token=APP_TOKEN,
            web_client=AsyncWebClient(base_url=running.api_url),
            ping_interval=0.1,  # notices a dropped connection at once
        )
        self.answer = answer
        self.frames: list[Json] = []
        self.requests: list[SocketModeRequest] = []
        self.changed = asyncio.Event()
        self.client.message_listeners.append(self._keep)
        self.client.socket_mode_request_listeners.append(self._ack)

    async def _keep(self, client: Any, message: dict[str, Any], raw: str | None) -> None:
        del client, raw
        self.frames.append(message)
        self.changed.set()

    async def _ack(self, client: Any, request: SocketModeRequest) -> None:
        del client
        self.requests.append(request)
        self.changed.set()
        payload = self.answer(request)
        await self.client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload=payload)
        )

    def hellos(self) -> list[Json]:
        return [f for f in self.frames if f.get("type") == "hello"]

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition`` holds, checked after each frame received."""
        async with asyncio.timeout(5):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def app(running: RunningFake) -> AsyncIterator[App]:
    app = App(running, lambda request: None)
    await app.client.connect()
    await running.fake.socket_wait_connections(1)
    yield app
    await app.client.close()


# -- opening


async def test_connections_open_needs_the_app_token(running: RunningFake) -> None:
    for token in (TOKEN, "xapp-1-unknown", "garbage"):
        client = AsyncWebClient(token=token, base_url=running.api_url)
        with pytest.raises(SlackApiError) as caught:
            await client.apps_connections_open(app_token=token)
        assert caught.value.response["error"] == "invalid_auth"


async def test_connections_open_answers_a_websocket_on_the_fake(running: RunningFake) -> None:
    client = AsyncWebClient(base_url=running.api_url)
    answer = await client.apps_connections_open(app_token=APP_TOKEN)
    assert answer["url"].startswith(running.url.replace("http://", "ws://") + "socket/")


async def test_a_websocket_url_serves_one_connection(running: RunningFake) -> None:
    client = AsyncWebClient(base_url=running.api_url)
    url = (await client.apps_connections_open(app_token=APP_TOKEN))["url"]
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        hello = await ws.receive_json()
        assert hello["type"] == "hello"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url)
        assert refused.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError):
        async with aiohttp.ClientSession() as session:
            await session.ws_connect(url.rsplit("/", 1)[0] + "/not-issued")


async def test_hello_counts_connections_and_names_the_app(fake: FakeSlack, app: App) -> None:
    await app.until(lambda: bool(app.hellos()))
    hello = app.hellos()[0]
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": "A0APP"}
    assert "host" in hello["debug_info"]
    assert fake.socket_connections == 1


# -- envelopes and acks


async def test_a_slash_command_is_acked_with_a_response_payload(
    fake: FakeSlack, running: RunningFake
) -> None:
    app = App(running, lambda request: {"text": f"got {request.payload['text']}"})
    await app.client.connect()
    try:
        fields = SlackRequests("secret").command_fields("list", user="U0ALICE", channel="C0A")
        envelope_id = await fake.socket_send("slash_commands", fields)
        assert await fake.socket_ack(envelope_id) == {"text": "got list"}
    finally:
        await app.client.close()
    request = app.requests[0]
    assert (request.type, request.envelope_id) == ("slash_commands", envelope_id)
    assert request.payload == fields
    assert request.accepts_response_payload is True
    assert (request.retry_attempt, request.retry_reason) == (0, "")


async def test_an_ack_without_payload_answers_empty(fake: FakeSlack, app: App) -> None:
    event = SlackRequests("secret").event_body({"type": "app_home_opened", "user": "U0ALICE"})
    envelope_id = await fake.socket_send("events_api", event)
    assert await fake.socket_ack(envelope_id) == {}
    assert app.requests[0].payload == event
    assert app.requests[0].accepts_response_payload is False
    assert [a.envelope_id for a in fake.socket_acks] == [envelope_id]
    assert fake.socket_acks[0].payload is None


async def test_interactive_payloads_take_a_response_only_for_view_submissions(
    fake: FakeSlack, app: App
) -> None:
    requests = SlackRequests("secret")
    click = requests.block_action_payload(
        user="U0ALICE",
        action_id="approve",
        value="1",
        block_id="b",
        channel="C0A",
        message_ts="1.2",
    )
    submit = requests.view_submission_payload(
        user="U0ALICE", callback_id="reject", private_metadata="{}", values={}
    )
    for payload in (click, submit):
        await fake.socket_ack(await fake.socket_send("interactive", payload))
    assert [r.accepts_response_payload for r in app.requests] == [False, True]
    assert [r.payload["type"] for r in app.requests] == ["block_actions", "view_submission"]


async def test_an_envelope_not_acked_times_out(fake: FakeSlack, running: RunningFake) -> None:
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(base_url=running.api_url)
        url = (await client.apps_connections_open(app_token=APP_TOKEN))["url"]
        async with session.ws_connect(url) as ws:
            await ws.receive_json()  # hello
            envelope_id = await fake.socket_send("events_api", {"type": "event_callback"})
            frame = await ws.receive_json()
            assert frame["envelope_id"] == envelope_id
            with pytest.raises(TimeoutError):
                await fake.socket_ack(envelope_id, timeout=0.05)
            await ws.send_str(json.dumps({"envelope_id": envelope_id}))
            assert await fake.socket_ack(envelope_id) == {}


async def test_an_envelope_sent_before_any_connection_waits_for_one(
    fake: FakeSlack, running: RunningFake
) -> None:
    envelope_id = await fake.socket_send("events_api", {"type": "event_callback"})
    app = App(running, lambda request: None)
    await app.client.connect()
    try:
        assert await fake.socket_ack(envelope_id) == {}
    finally:
        await app.client.close()
    assert app.requests[0].retry_attempt == 0


async def test_unknown_envelope_kind_is_a_test_error(fake: FakeSlack) -> None:
    with pytest.raises(ValueError, match="envelope type"):
        await fake.socket_send("block_actions", {})  # type: ignore[arg-type]


# -- disconnect and drop


async def test_disconnect_makes_the_client_reconnect(fake: FakeSlack, app: App) -> None:
    await fake.socket_disconnect("refresh_requested")
    await app.until(lambda: len(app.hellos()) == 2)
    await fake.socket_wait_connections(1)
    envelope_id = await fake.socket_send("events_api", {"type": "event_callback"})
    assert await fake.socket_ack(envelope_id) == {}
    assert fake.socket_connections == 1


async def test_disconnect_is_a_frame_to_every_connection(
    fake: FakeSlack, running: RunningFake
) -> None:
    client = AsyncWebClient(base_url=running.api_url)
    async with aiohttp.ClientSession() as session:
        sockets = []
        for _ in range(2):
            url = (await client.apps_connections_open(app_token=APP_TOKEN))["url"]
            sockets.append(await session.ws_connect(url))
            await sockets[-1].receive_json()  # hello
        await fake.socket_disconnect("warning")
        for ws in sockets:
            frame = await ws.receive_json()
            assert (frame["type"], frame["reason"]) == ("disconnect", "warning")
            await ws.close()


async def test_a_dropped_envelope_is_sent_again_with_its_retry_attempt(
    fake: FakeSlack, running: RunningFake
) -> None:
    acking = False
    app = App(running, lambda request: None)
    app.client.socket_mode_request_listeners.clear()

    async def ack_once_reconnected(client: Any, request: SocketModeRequest) -> None:
        app.requests.append(request)
        app.changed.set()
        if acking:
            await app._ack(client, request)

    app.client.socket_mode_request_listeners.append(ack_once_reconnected)
    await app.client.connect()
    try:
        await fake.socket_wait_connections(1)
        envelope_id = await fake.socket_send("events_api", {"type": "event_callback"})
        await app.until(lambda: len(app.requests) == 1)
        acking = True
        await fake.socket_drop()
        assert fake.socket_connections == 0
        assert await fake.socket_ack(envelope_id) == {}
    finally:
        await app.client.close()
    first, again = app.requests[0], app.requests[-1]
    assert (first.retry_attempt, first.retry_reason) == (0, "")
    assert again.envelope_id == envelope_id
    assert (again.retry_attempt, again.retry_reason) == (1, "timeout")
    assert [d.retry_attempt for d in fake.socket_deliveries] == [0, 1]
    assert len(app.hellos()) == 2


async def test_many_envelopes_over_dropped_sockets_are_each_acked_once(
    fake: FakeSlack, running: RunningFake
) -> None:
    apps = [App(running, lambda request: {"seen": request.payload["n"]}) for _ in range(3)]
    for each in apps:
        await each.client.connect()
    try:
        await fake.socket_wait_connections(3)
        sent = [await fake.socket_send("slash_commands", {"n": n}) for n in range(40)]
        await fake.socket_drop()
        sent += [await fake.socket_send("slash_commands", {"n": n}) for n in range(40, 60)]
        answers = [await fake.socket_ack(envelope_id) for envelope_id in sent]
    finally:
        for each in apps:
            await each.client.close()
    assert answers == [{"seen": n} for n in range(60)]
    acked = Counter(a.envelope_id for a in fake.socket_acks)
    assert set(acked) == set(sent)
    assert set(acked.values()) == {1}
    # Round-robin: every connection carried envelopes.
    assert all(each.requests for each in apps)


async def test_at_most_ten_connections(fake: FakeSlack, running: RunningFake) -> None:
    client = AsyncWebClient(base_url=running.api_url)
    async with aiohttp.ClientSession() as session:
        sockets = []
        for _ in range(10):
            url = (await client.apps_connections_open(app_token=APP_TOKEN))["url"]
            sockets.append(await session.ws_connect(url))
            assert (await sockets[-1].receive_json())["type"] == "hello"
        assert fake.socket_connections == 10
        url = (await client.apps_connections_open(app_token=APP_TOKEN))["url"]
        async with session.ws_connect(url) as eleventh:
            frame = await eleventh.receive_json()
        assert frame == {"type": "disconnect", "reason": "too_many_websockets"}
        for ws in sockets:
            await ws.close()


async def test_pings_are_answered(running: RunningFake) -> None:
    client = AsyncWebClient(base_url=running.api_url)
    url = (await client.apps_connections_open(app_token=APP_TOKEN))["url"]
    async with aiohttp.ClientSession() as session, session.ws_connect(url, autoping=False) as ws:
        assert (await ws.receive_json())["type"] == "hello"
        await ws.ping(b"sdk-ping-pong:1")
        pong = await ws.receive()
        assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"sdk-ping-pong:1")


async def test_mounted_under_a_prefix_the_socket_url_keeps_it(fake: FakeSlack) -> None:
    outer = web.Application()
    outer.add_subapp("/sandbox/slack", fake.app())
    runner = web.AppRunner(outer, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        api = AsyncWebClient(base_url=f"http://127.0.0.1:{port}/sandbox/slack/api/")
        url = (await api.apps_connections_open(app_token=APP_TOKEN))["url"]
        assert url.startswith(f"ws://127.0.0.1:{port}/sandbox/slack/socket/")
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            assert (await ws.receive_json())["type"] == "hello"
    finally:
        await runner.cleanup()

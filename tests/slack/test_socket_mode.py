"""Socket Mode end to end: the real server with SLACK_APP_TOKEN connects to the fake Slack's
websocket; commands, clicks, forms and events arrive as envelopes and are acked over it, while
the HTTP server keeps serving the engine's API and health."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from tests import factories as f
from tests.harness import Bot, eventually
from tests.reliability.processes import ServerProcess
from trame_bot.bootstrap import Deps, build_web_app
from trame_bot.config import Settings
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import RunState
from trame_bot.logs import SLACK_TOKEN
from trame_bot.sandbox.fake_records import Response
from trame_bot.sandbox.fake_slack import FakeSlack, RunningFake
from trame_bot.sandbox.slack_requests import SlackRequests, selected_option, text_input
from trame_bot.services import workspaces
from trame_bot.slack.blocks.replies import HELP
from trame_bot.slack.ids import Action, BlockId, Callback
from trame_bot.slack.listeners.commands import WORKING_ON_IT
from trame_bot.slack.socket import SOCKET, attach
from trame_bot.store.models import AuditEvent, Decision

APP_TOKEN = "xapp-1-A0APP-1-SECRET-app-token-4321"
Json = dict[str, Any]
# Short waits so that a dropped socket is noticed and replaced within a second.
FAST = {"ping_interval": 0.5, "first_delay": 0.05, "max_delay": 0.5}


@dataclass
class Socket:
    """Slack's side of the socket: envelopes sent through the fake, their acks awaited."""

    fake: FakeSlack
    fake_url: str
    slack: SlackRequests

    @classmethod
    def of(cls, running: RunningFake, signing_secret: str | None) -> Socket:
        return cls(running.fake, running.url, SlackRequests(signing_secret or ""))

    async def send(self, kind: str, payload: Json) -> Json:
        envelope_id = await self.fake.socket_send(kind, payload)  # type: ignore[arg-type]
        return await self.fake.socket_ack(envelope_id, timeout=5)

    def command(self, text: str, *, user: str, channel: str, key: str | None = None) -> Json:
        """A command whose ``response_url`` is keyed ``key`` (default: one per user)."""
        return self.slack.command_fields(
            text,
            user=user,
            channel=channel,
            response_url=self.fake.response_url(self.fake_url, key or f"cmd-{user}"),
        )

    async def answer(self, envelope_id: str, key: str) -> str:
        """A command's answer: its ack's text, or, when the command outlasted `ACK_WITHIN` and
        was acked with a note, what it then posted to its ``response_url`` (keyed ``key``)."""
        text = str((await self.fake.socket_ack(envelope_id, timeout=10)).get("text") or "")
        if text != WORKING_ON_IT:
            assert not self._responses(key), "answered in the ack and again after it"
            return text

        async def answered() -> bool:
            return bool(self._responses(key))

        await eventually(answered, within=10)
        (response,) = self._responses(key)
        return str(response.text)

    def _responses(self, key: str) -> list[Response]:
        return [r for r in self.fake.responses if r.key == key]

    def click(self, action: Action, run_id: str, *, user: str, channel: str, ts: str) -> Json:
        return self.slack.block_action_payload(
            user=user,
            action_id=action.value,
            value=run_id,
            block_id="run_actions",
            channel=channel,
            message_ts=ts,
            response_url=self.fake.response_url(self.fake_url, f"act-{user}"),
        )


async def start(deps: Deps, slack_api: RunningFake, app_token: str = APP_TOKEN) -> Bot:
    """The server as `trame-bot serve` builds it with SLACK_APP_TOKEN set."""
    settings = replace(deps.settings, slack_api_url=slack_api.api_url, slack_app_token=app_token)
    server_deps = Deps(settings, deps.db, deps.clock)
    app = build_web_app(server_deps)
    attach(app, settings, **FAST)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return Bot(
        deps=server_deps,
        url=str(server.make_url("/slack/events")),
        session=aiohttp.ClientSession(),
        slack=SlackRequests(settings.slack_signing_secret or ""),
        fake=slack_api.fake,
        fake_url=slack_api.url,
        server=server,
    )


@pytest.fixture
async def bot(deps: Deps, slack_api: RunningFake) -> AsyncIterator[Bot]:
    """Overrides the HTTP-only server of tests/conftest.py (and so `acme` uses this one)."""
    slack_api.fake.configure_app(app_token=APP_TOKEN)
    bot = await start(deps, slack_api)
    try:
        await bot.fake.socket_wait_connections(1)
        yield bot
    finally:
        await bot.session.close()
        await bot.server.close()


@pytest.fixture
def socket(slack_api: RunningFake, settings: Settings) -> Socket:
    return Socket.of(slack_api, settings.slack_signing_secret)


async def test_a_command_is_answered_in_the_ack_as_over_http(
    bot: Bot, socket: Socket, acme: str
) -> None:
    await f.request(bot.deps, by=f.OWNER)
    ack = await socket.send("slash_commands", socket.command("status", user=f.MEMBER, channel=acme))
    assert "Pending approvals: 1" in ack["text"]
    assert "Audit chain:" in ack["text"]
    over_http = await bot.command("status", user=f.MEMBER, channel=acme)
    # The listener's ack(text) is the HTTP response's body, and here the envelope ack's payload.
    assert ack == {"text": over_http.body}


async def test_a_click_and_a_decline_form_decide_runs(bot: Bot, socket: Socket, acme: str) -> None:
    approved, declined = await f.request(bot.deps), await f.request(bot.deps)
    await bot.delivered()
    ts = bot.card(acme).ts
    click = socket.click(Action.APPROVE, approved.id, user=f.ADMIN, channel=acme, ts=ts)
    assert await socket.send("interactive", click) == {}
    assert await bot.settles(approved.id) is RunState.APPROVED

    decline = socket.click(Action.DECLINE, declined.id, user=f.ADMIN, channel=acme, ts=ts)
    assert await socket.send("interactive", decline) == {}

    async def opened() -> bool:
        return bool(bot.fake.calls_to("views.open"))

    await eventually(opened)
    view = bot.fake.calls_to("views.open")[0].args["view"]
    view = json.loads(view) if isinstance(view, str) else view

    def submission(reason: str) -> Json:
        return bot.slack.view_submission_payload(
            user=f.ADMIN,
            callback_id=Callback.DECLINE,
            private_metadata=view["private_metadata"],
            values={
                BlockId.DECLINE_CATEGORY: {Action.DECLINE_CATEGORY: selected_option("wrong_data")},
                BlockId.DECLINE_REASON: {Action.DECLINE_REASON: text_input(reason)},
            },
        )

    refused = await socket.send("interactive", submission("no"))
    assert refused["response_action"] == "errors", "the form's errors ride on the ack"
    assert BlockId.DECLINE_REASON in refused["errors"]
    assert await socket.send("interactive", submission("The sheet is last month's")) == {}
    assert await bot.settles(declined.id) is RunState.DECLINED


async def test_app_home_opened_publishes_the_home_tab_and_a_retry_is_harmless(
    bot: Bot, socket: Socket, acme: str
) -> None:
    await f.request(bot.deps, by=f.OWNER)
    body = bot.slack.event_body(bot.slack.app_home_opened(f.ADMIN), event_id="Ev0HOME")
    assert await socket.send("events_api", body) == {}
    assert await socket.send("events_api", body) == {}, "the same event again is acked too"

    async def published() -> bool:
        return f.ADMIN in bot.fake.home_views

    await eventually(published)
    assert "Waiting for your approval (1)" in json.dumps(bot.fake.home_views[f.ADMIN].payload)


@pytest.mark.slow
async def test_200_envelopes_through_a_drop_and_a_refresh_each_acked_each_effect_once(
    deps: Deps, slack_api: RunningFake
) -> None:
    """50 approve clicks on 50 pending runs and 150 commands (status, help), in waves as people
    click (200 writes at once would outwait SQLite's busy timeout and be told to try again,
    which tests/reliability covers), with the socket dropped and then refreshed mid-way."""
    acme = (await f.governed_workspace(deps)).approvals_channel
    await f.workflow(deps)
    pending = [await f.request(deps) for _ in range(50)]
    slack_api.fake.configure_app(app_token=APP_TOKEN)
    bot = await start(deps, slack_api)
    socket = Socket.of(slack_api, deps.settings.slack_signing_secret)
    try:
        await bot.fake.socket_wait_connections(1)

        async def decided(count: int) -> None:
            async def reached() -> bool:
                async with deps.db.reading() as session:
                    done = await session.scalar(select(func.count()).select_from(Decision))
                return done == count

            await eventually(reached, within=20)

        clicks: list[str] = []
        commands: list[tuple[str, str, str]] = []
        for wave in range(10):
            for run in pending[wave * 5 : (wave + 1) * 5]:
                click = socket.click(Action.APPROVE, run.id, user=f.ADMIN, channel=acme, ts="1.1")
                clicks.append(await bot.fake.socket_send("interactive", click))
                for text in ("status", "help", "help"):
                    key = f"cmd-{len(commands)}"
                    command = socket.command(text, user=f.MEMBER, channel=acme, key=key)
                    sent = await bot.fake.socket_send("slash_commands", command)
                    commands.append((text, sent, key))
            if wave == 3:
                await bot.fake.socket_drop()  # what was not acked yet is sent again
            if wave == 7:
                await bot.fake.socket_wait_connections(1)
                await bot.fake.socket_disconnect("refresh_requested")
            await decided(len(clicks))

        acks = await asyncio.gather(*(bot.fake.socket_ack(e, timeout=10) for e in clicks))
        assert acks == [{}] * 50, "every click acked"
        expected = {"status": "Audit chain:", "help": HELP}
        for text, envelope_id, key in commands:
            # On a loaded machine a status may outlast ACK_WITHIN; it is then answered after.
            answer = await socket.answer(envelope_id, key)
            assert expected[text] in answer, "every command answered, once"
        for run in pending:
            assert await bot.state_of(run.id) is RunState.APPROVED
        async with deps.db.reading() as session:
            per_run = await session.execute(
                select(Decision.run_id, func.count()).group_by(Decision.run_id)
            )
            audited = await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "run.approved")
            )
        assert set(dict(per_run.all()).values()) == {1}, "no run decided twice"
        assert audited == 50
        assert bot.server.app[SOCKET].connections >= 3, "dropped, then refreshed"
        assert not [t for t in bot.ephemerals(f.ADMIN) if "already" in t], (
            "no click re-sent after a lost ack was dispatched again"
        )
    finally:
        await bot.session.close()
        await bot.server.close()


async def test_the_engine_api_health_and_metrics_answer_in_socket_mode(
    bot: Bot, socket: Socket, acme: str
) -> None:
    _, key = await workspaces.create_api_key(bot.deps.ctx, "acme", "engine", Actor.cli())
    base = bot.url.removesuffix("/slack/events")
    headers = {"Authorization": f"Bearer {key}"}
    async with bot.session.post(
        f"{base}/api/v1/workflows/invoice-sync/runs", json={}, headers=headers
    ) as response:
        assert response.status == 201, await response.text()
        run = await response.json()
    await bot.delivered()
    ts = bot.card(acme).ts
    click = socket.click(Action.APPROVE, run["id"], user=f.ADMIN, channel=acme, ts=ts)
    assert await socket.send("interactive", click) == {}
    assert await bot.settles(run["id"]) is RunState.APPROVED
    async with bot.session.get(f"{base}/api/v1/runs/{run['id']}", headers=headers) as response:
        assert (await response.json())["state"] == "approved"
    for path in ("/healthz", "/readyz", "/metrics"):
        async with bot.session.get(base + path) as response:
            assert response.status == 200, path


async def test_a_refused_app_token_is_retried_and_named_without_its_value(
    deps: Deps, slack_api: RunningFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trame_bot.slack.socket")
    bot = await start(deps, slack_api)  # the fake does not know the app token yet
    try:

        async def refused_twice() -> bool:
            return sum("check SLACK_APP_TOKEN" in r.getMessage() for r in caplog.records) >= 2

        await eventually(refused_twice)
        async with bot.session.get(bot.url.removesuffix("/slack/events") + "/healthz") as answer:
            assert answer.status == 200, "the HTTP server serves while Slack refuses the socket"
        slack_api.fake.configure_app(app_token=APP_TOKEN)  # the operator fixes the token
        await bot.fake.socket_wait_connections(1)
    finally:
        await bot.session.close()
        await bot.server.close()
    assert bot.fake.socket_connections == 0, "closed with the server"
    assert "Socket Mode closed" in caplog.text
    assert APP_TOKEN not in caplog.text
    assert not SLACK_TOKEN.search(caplog.text), "no token of any kind in the logs"


async def test_serve_connects_with_slack_app_token_and_closes_the_socket_on_sigterm(
    deps: Deps, slack_api: RunningFake, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = (await f.governed_workspace(deps)).approvals_channel
    slack_api.fake.configure_app(app_token=APP_TOKEN)
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    server = ServerProcess(replace(deps.settings, slack_api_url=slack_api.api_url), database_url)
    await server.start()
    try:
        await slack_api.fake.socket_wait_connections(1, timeout=10)
        socket = Socket.of(slack_api, deps.settings.slack_signing_secret)
        help_command = socket.command("help", user=f.MEMBER, channel=acme)
        reply = await socket.send("slash_commands", help_command)
        assert HELP in reply["text"]
    finally:
        log = await server.stop(signal.SIGTERM)
    assert server.process is not None
    assert server.process.returncode == 0, log
    assert slack_api.fake.socket_connections == 0, "the socket closed with the server"
    assert APP_TOKEN.encode() not in log

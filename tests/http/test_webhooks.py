"""Decision webhooks: signed, retried with backoff until a 2xx, bounded, and never lost."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from tests import factories as f
from tests.harness import Bot, eventually, receiving
from trame_bot.bootstrap import Deps, build_web_app
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Verdict
from trame_bot.http.webhooks import WebhookSender
from trame_bot.services import decisions, overview
from trame_bot.services.outbox import Kind, OutboxWorker
from trame_bot.store.models import AuditEvent, OutboxMessage


@dataclass
class Receiver:
    """The engine's webhook endpoint: checks signatures like the README's example does."""

    secret: str = ""
    failures: int = 0
    attempts: int = 0
    accepted: list[dict[str, object]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        timestamp = request.headers["X-Trame-Timestamp"]
        expected = (
            "v1="
            + hmac.new(
                self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
            ).hexdigest()
        )
        if not hmac.compare_digest(expected, request.headers["X-Trame-Signature"]):
            return web.Response(status=401)
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=500)
        self.accepted.append(json.loads(body))
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    async with receiving("/hooks/trame", state.handle) as url:
        state.url = url
        yield state


async def hooked(bot: Bot, receiver: Receiver) -> str:
    ws = await f.governed_workspace(bot.deps, webhook_url=receiver.url)
    assert ws.webhook_secret
    receiver.secret = ws.webhook_secret
    await f.workflow(bot.deps)
    return (await f.request(bot.deps, by=f.MEMBER)).id


async def test_a_decision_is_pushed_signed(bot: Bot, receiver: Receiver) -> None:
    run_id = await hooked(bot, receiver)
    decided = await decisions.decide(
        bot.deps.ctx, run_id, Actor.slack(f.ADMIN), Verdict.DECLINE, reason="wrong sheet"
    )

    async def arrived() -> bool:
        return bool(receiver.accepted)

    await eventually(arrived)
    (event,) = receiver.accepted
    assert event["type"] == "run.decided"
    assert event["run"] == run_id
    assert event["workflow"] == "invoice-sync"
    assert (event["state"], event["decided_by"], event["reason"]) == (
        "declined",
        f.ADMIN,
        "wrong sheet",
    )
    assert event["fingerprint"] == decided.run.fingerprint
    assert len(str(event["id"])) == 32


async def test_a_flaky_receiver_gets_the_event_once_after_retries(
    bot: Bot, receiver: Receiver
) -> None:
    run_id = await hooked(bot, receiver)
    receiver.failures = 2
    await decisions.decide(bot.deps.ctx, run_id, Actor.slack(f.ADMIN), Verdict.APPROVE)

    async def arrived() -> bool:
        bot.deps.clock.advance(timedelta(seconds=10))  # type: ignore[attr-defined]
        return bool(receiver.accepted)

    await eventually(arrived, within=10)
    assert receiver.attempts == 3
    assert len(receiver.accepted) == 1


async def test_a_receiver_that_never_answers_2xx_is_given_up_audited_and_shown(
    bot: Bot, receiver: Receiver
) -> None:
    run_id = await hooked(bot, receiver)
    receiver.failures = 100
    # Only the worker below delivers: the server's own (which gives up after 12 attempts, not
    # 3) would race it for the row whenever the clock moves.
    await bot.server.close()
    await decisions.decide(bot.deps.ctx, run_id, Actor.slack(f.ADMIN), Verdict.APPROVE)
    async with aiohttp.ClientSession() as session:
        worker = OutboxWorker(
            bot.deps.ctx,
            {Kind.WEBHOOK.value: WebhookSender(bot.deps.ctx, lambda: session)},
            max_attempts=3,
        )
        for _ in range(3):
            bot.deps.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
            await worker.deliver_due()
    async with bot.deps.db.reading() as session_:
        row = (
            await session_.execute(select(OutboxMessage).where(OutboxMessage.kind == "webhook"))
        ).scalar_one()
        failed = (
            await session_.execute(select(AuditEvent).where(AuditEvent.action == "delivery.failed"))
        ).scalar_one()
    assert (row.state, row.attempts) == ("failed", 3)
    assert "receiver answered 500" in failed.data
    status = await overview.overview(bot.deps.ctx, "acme", Actor.slack(f.MEMBER))
    assert status.failed_deliveries == 1


async def test_delivery_survives_a_server_restart(bot: Bot, receiver: Receiver) -> None:
    """The first server stops with the webhook undelivered; a new one on the same database
    delivers it."""
    run_id = await hooked(bot, receiver)
    receiver.failures = 1
    await decisions.decide(bot.deps.ctx, run_id, Actor.slack(f.ADMIN), Verdict.APPROVE)

    async def tried() -> bool:
        return receiver.attempts >= 1

    await eventually(tried)
    assert not receiver.accepted
    await bot.server.close()  # the process stops; the webhook row waits in the database
    replacement = TestServer(
        build_web_app(Deps(bot.deps.settings, bot.deps.db, bot.deps.clock)), host="127.0.0.1"
    )
    await replacement.start_server()
    try:

        async def delivered() -> bool:
            bot.deps.clock.advance(timedelta(seconds=10))  # type: ignore[attr-defined]
            return bool(receiver.accepted)

        await eventually(delivered, within=10)
    finally:
        await replacement.close()
    assert len(receiver.accepted) == 1

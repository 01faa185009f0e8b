"""Secrets never leak: a day of realistic traffic (commands, clicks, a decline, the API, a
webhook, and requests that fail) with every log record captured at DEBUG and every body the
outside world receives kept; none holds the bot token, the signing secret, an API key, its
hash or a webhook secret."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from aiohttp import web

from tests import factories as f
from tests.harness import Bot, eventually, receiving
from trame_bot.clock import FakeClock
from trame_bot.config import Settings
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, RunState
from trame_bot.logs import REDACTED, JsonFormatter, SecretFilter, configure_logging, quiet_libraries
from trame_bot.sandbox.slack_requests import SignedRequest, selected_option, text_input
from trame_bot.services import workspaces
from trame_bot.slack.ids import Action, BlockId, Callback
from trame_bot.store import outbox

TEXT_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


@dataclass
class Receiver:
    """The engine's webhook endpoint: fails the first `failures` deliveries, keeps the rest."""

    failures: int = 1
    seen: list[str] = field(default_factory=list)
    accepted: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(json.dumps(dict(request.headers)) + (await request.text()))
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=500, text="try again")
        self.accepted += 1
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    async with receiving("/hooks/trame", state.handle) as url:
        state.url = url
        yield state


@dataclass
class Seen:
    """Every body that left the bot: answers to the tests, calls to Slack, webhooks."""

    bodies: list[str] = field(default_factory=list)

    def keep(self, status: int, body: str) -> str:
        self.bodies.append(f"{status} {body}")
        return body


def secrets_of(settings: Settings, api_key: str, webhook_secret: str) -> dict[str, str]:
    return {
        "bot token": settings.slack_bot_token or "",
        "signing secret": settings.slack_signing_secret or "",
        "API key": api_key,
        "API key hash": hashlib.sha256(api_key.encode()).hexdigest(),
        "webhook secret": webhook_secret,
    }


def log_lines(caplog: pytest.LogCaptureFixture) -> Iterator[tuple[str, str]]:
    """(logger, line) for each record as the text and the JSON handler would write it,
    exceptions included, and its raw arguments."""
    json_format = JsonFormatter()
    for phase in ("setup", "call"):
        for record in caplog.get_records(phase):  # type: ignore[arg-type]
            for line in (TEXT_FORMAT.format(record), json_format.format(record), repr(record.args)):
                yield record.name, line


async def test_a_day_of_traffic_leaks_no_secret_to_logs_or_answers(
    bot: Bot, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything at DEBUG, the Slack SDK included (it logs each request it sends), so that
    # any secret that reaches a log line is caught; configure_logging would quiet them.
    caplog.set_level(logging.DEBUG)
    for name in ("slack_sdk", "slack_bolt"):
        caplog.set_level(logging.DEBUG, logger=name)
    seen = Seen()
    clock = bot.deps.clock
    assert isinstance(clock, FakeClock)

    created = await workspaces.create_workspace(
        bot.deps.ctx,
        "acme",
        workspaces.WorkspaceSettings(
            name="Acme",
            approvals_channel="C0APPROVALS",
            ops_channel="C0OPS",
            webhook_url=receiver.url,
        ),
        f.CLI,
    )
    assert created.webhook_secret
    for user, role in ((f.OWNER, Role.OWNER), (f.ADMIN, Role.ADMIN), (f.MEMBER, Role.MEMBER)):
        await workspaces.set_role(bot.deps.ctx, "acme", user, role, f.CLI)
    _, api_key = await workspaces.create_api_key(bot.deps.ctx, "acme", "engine", Actor.cli())
    await f.connector(bot.deps, "acme", "crm")
    await f.connector(bot.deps, "acme", "sheets", toolkit="google-sheets")
    channel = "C0APPROVALS"
    base = bot.url.removesuffix("/slack/events")

    async def api(
        method: str, path: str, body: object = None, key: str | None = api_key
    ) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with bot.session.request(
            method, f"{base}/api/v1{path}", json=body, headers=headers
        ) as r:
            return r.status, seen.keep(r.status, await r.text())

    async def command(text: str, user: str = f.ADMIN) -> str:
        answer = await bot.command(text, user=user, channel=channel)
        return seen.keep(answer.status, answer.body)

    # The engine saves a workflow and asks for runs.
    doc = f.workflow_doc().model_dump(mode="json")
    assert (await api("PUT", "/workflows/invoice-sync", doc))[0] == 201
    assert (await api("GET", "/workflows"))[0] == 200
    status, body = await api("POST", "/workflows/invoice-sync/runs", {"requested_by": f.MEMBER})
    first = json.loads(body)["id"]
    bot.fake.fail_next("chat.postMessage", status=500)  # Slack fails the next card once
    status, body = await api("POST", "/workflows/invoice-sync/runs", {"requested_by": f.MEMBER})
    second = json.loads(body)["id"]

    async def drained() -> bool:
        """Everything sent, retries included: the outbox's backoff runs on the fake clock."""
        clock.advance(timedelta(seconds=30))
        async with bot.deps.db.reading() as session:
            return (await outbox.backlog(session))[0] == 0

    await eventually(drained, within=10)

    # Reviewers click: one approval, one decline with a reason.
    assert (await bot.click(Action.APPROVE, first, user=f.ADMIN, channel=channel)).status == 200
    await eventually(drained, within=10)
    assert await bot.state_of(first) is RunState.APPROVED
    await bot.click(Action.DECLINE, second, user=f.OWNER, channel=channel)

    async def form_opened() -> bool:
        return bool(bot.fake.calls_to("views.open"))

    await eventually(form_opened)
    view = bot.fake.calls_to("views.open")[0].args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    declined = await bot.send(
        bot.slack.view_submission(
            user=f.OWNER,
            callback_id=Callback.DECLINE,
            private_metadata=view["private_metadata"],
            values={
                BlockId.DECLINE_CATEGORY: {Action.DECLINE_CATEGORY: selected_option("other")},
                BlockId.DECLINE_REASON: {Action.DECLINE_REASON: text_input("not this week, sorry")},
            },
        )
    )
    seen.keep(declined.status, declined.body)
    await eventually(drained, within=10)
    assert await bot.state_of(second) is RunState.DECLINED

    # The engine checks and reads; the webhook receiver fails once, then takes both decisions.
    status, body = await api("POST", f"/runs/{first}/verify", {"fingerprint": "0" * 64})
    assert status == 409
    assert (await api("GET", f"/runs/{second}?wait=0"))[0] == 200

    await eventually(drained, within=10)
    assert receiver.accepted == 2
    assert sum(c.ok for c in bot.fake.calls_to("chat.postMessage")) >= 4, "cards, reply, DMs"

    # Slash commands, admin ones included (the export uploads a file).
    assert "Pending approvals" in await command("status")
    await command("workflows")
    await command("audit")
    assert "Exporting" in await command("audit export", user=f.OWNER)
    assert "paused" in await command("pause invoice-sync client asked", user=f.MEMBER)
    await command("resume invoice-sync")

    async def exported() -> bool:
        return any(stored.content for stored in bot.fake.files.values())

    await eventually(exported)

    # Requests that fail: forged Slack signatures, wrong or misplaced keys, a broken command.
    forged = bot.slack.command("status", user=f.ADMIN, channel=channel)
    for headers in (
        {**forged.headers, "X-Slack-Signature": "v0=" + "0" * 64},
        {"Content-Type": forged.headers["Content-Type"]},
    ):
        async with bot.session.post(bot.url, data=forged.body, headers=headers) as r:
            assert r.status == 401
            seen.keep(r.status, await r.text())
    assert (await api("GET", "/workflows", key="trame_wrong-key-0000"))[0] == 401
    assert (await api("GET", "/workflows", key=api_key[:-1]))[0] == 401
    assert (await api("GET", "/workflows", key=None))[0] == 401
    async with bot.session.get(
        f"{base}/api/v1/workflows", headers={"Authorization": f"Basic {api_key}"}
    ) as r:
        assert r.status == 401
        seen.keep(r.status, await r.text())
    assert (await api("PUT", "/workflows/invoice-sync", {"key": "x"}))[0] == 422
    no_user = urlencode({"command": "/trame", "text": "status", "channel_id": channel}).encode()
    broken = await bot.send(SignedRequest(no_user, bot.slack.sign(no_user)))
    assert "Reference" in seen.keep(broken.status, broken.body)

    # What else is served: the audit log, the API document, health and metrics.
    for path in ("/api/v1/audit?format=jsonl", "/api/v1/audit?format=csv"):
        async with bot.session.get(
            base + path, headers={"Authorization": f"Bearer {api_key}"}
        ) as r:
            assert r.status == 200
            seen.keep(r.status, await r.text())
    for path in ("/api/v1/openapi.json", "/healthz", "/readyz", "/metrics"):
        async with bot.session.get(base + path) as r:
            seen.keep(r.status, await r.text())
    await eventually(drained, within=10)

    outside = [
        *seen.bodies,
        *(json.dumps(call.args, default=str) for call in bot.fake.calls),
        *(json.dumps(response.body) for response in bot.fake.responses),
        *((stored.content or b"").decode() for stored in bot.fake.files.values()),
        *receiver.seen,
    ]
    logs = list(log_lines(caplog))
    assert len(logs) > 100, "DEBUG records were captured"
    assert any("Sending a request" in line for _, line in logs), "slack_sdk's DEBUG logs too"
    assert any(r.exc_info for r in caplog.records), "a logged exception, traceback formatted"
    assert any(line.startswith("409 ") for line in seen.bodies)
    for name, secret in secrets_of(bot.deps.settings, api_key, created.webhook_secret).items():
        assert secret
        # aiosqlite's statement log is the known leak, asserted on its own below.
        leaked_logs = [line for logger, line in logs if secret in line and logger != "aiosqlite"]
        assert not leaked_logs, f"the {name} is in the logs: {leaked_logs[:3]}"
        leaked_out = [body for body in outside if secret in body]
        assert not leaked_out, f"the {name} left the bot: {leaked_out[:3]}"


async def test_debug_logs_of_the_database_driver_hold_no_secret(
    bot: Bot,
    caplog: pytest.LogCaptureFixture,
    is_postgres: bool,
    request: pytest.FixtureRequest,
) -> None:
    """With LOG_LEVEL=DEBUG nothing may write a webhook secret or an API key's hash, not even
    the driver's statement log."""
    quiet_libraries()  # what configure_logging does at start, whatever LOG_LEVEL says
    caplog.set_level(logging.DEBUG)
    created = await workspaces.create_workspace(
        bot.deps.ctx,
        "acme",
        workspaces.WorkspaceSettings(
            name="Acme", approvals_channel="C0APPROVALS", webhook_url="https://engine.example/h"
        ),
        f.CLI,
    )
    assert created.webhook_secret
    _, api_key = await workspaces.create_api_key(bot.deps.ctx, "acme", "engine", Actor.cli())
    base = bot.url.removesuffix("/slack/events")
    async with bot.session.get(
        f"{base}/api/v1/workflows", headers={"Authorization": f"Bearer {api_key}"}
    ) as r:
        assert r.status == 200
    logs = [line for _, line in log_lines(caplog)]
    secrets = secrets_of(bot.deps.settings, api_key, created.webhook_secret)
    leaked = [name for name, secret in secrets.items() if any(secret in line for line in logs)]
    assert leaked == []


def _record(message: str, *args: object, exc_info: bool = False) -> logging.LogRecord:
    info = None
    if exc_info:
        try:
            raise RuntimeError(message % args)
        except RuntimeError:
            info = sys.exc_info()
    return logging.LogRecord("trame_bot.test", logging.ERROR, __file__, 1, message, args, info)


SECRETS = {
    "bot token": "xoxb-test-token-SECRET-1234",
    "signing secret": "signing-secret-SECRET-5678",
    "API key": "trame_Zm9vYmFyYmF6cXV4LXNlY3JldC1hcGkta2V5LXZhbHVl",
    "webhook secret": "9f" * 32,
}


@pytest.mark.parametrize("name", list(SECRETS))
def test_the_secret_filter_scrubs_a_secret_from_message_and_arguments(name: str) -> None:
    secret = SECRETS[name]
    scrubber = SecretFilter(SECRETS.values())
    for record in (
        _record(f"calling with {secret} inline"),
        _record("calling with %s as an argument", secret),
        _record("a dict argument %r", {"headers": {"Authorization": f"Bearer {secret}"}}),
        _record("%s%s", secret[:5], secret[5:]),  # split across arguments, whole once formatted
    ):
        assert scrubber.filter(record) is True, "scrubbed, never dropped"
        for line in (TEXT_FORMAT.format(record), JsonFormatter().format(record)):
            assert secret not in line
            assert REDACTED in line


def test_configure_logging_installs_the_filter_for_the_configured_secrets(
    settings: Settings,
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging(settings)
        (handler,) = root.handlers
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    record = _record("token %s, secret %s", settings.slack_bot_token, settings.slack_signing_secret)
    assert handler.filter(record)
    line = handler.format(record)
    assert settings.slack_bot_token not in line
    assert settings.slack_signing_secret not in line
    assert line.count(REDACTED) == 2


def test_the_secret_filter_scrubs_a_secret_from_an_exception_too() -> None:
    secret = SECRETS["bot token"]
    record = _record("Slack refused the token %s", secret, exc_info=True)
    SecretFilter(SECRETS.values()).filter(record)
    for line in (TEXT_FORMAT.format(record), JsonFormatter().format(record)):
        assert secret not in line

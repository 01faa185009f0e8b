"""Requests as Slack sends them: signatures slack_sdk accepts, the fields Slack sends, and a real
Bolt app that reads them over HTTP while it talks to the fake Web API."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltRequest, AsyncRespond
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from trame_bot.sandbox.fake_slack import FakeSlack, RunningFake, serve
from trame_bot.sandbox.slack_requests import (
    SignedRequest,
    SlackRequests,
    selected_option,
    text_input,
)

SECRET = "signing-secret-for-tests"
TOKEN = "xoxb-fake-token"
NOW = 1_800_000_000.25

Json = dict[str, Any]

CARD: list[Json] = [
    {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "Run #42"}},
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": "42",
            }
        ],
    },
]


@pytest.fixture
def requests() -> SlackRequests:
    return SlackRequests(SECRET, clock=lambda: NOW)


def verifier(now: float = NOW) -> SignatureVerifier:
    class Clock:
        def now(self) -> float:
            return now

    return SignatureVerifier(SECRET, clock=Clock())  # type: ignore[arg-type]


def form(request: SignedRequest) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(request.body.decode()).items()}


def payload(request: SignedRequest) -> Json:
    return dict(json.loads(form(request)["payload"]))


# -- signing


def test_signature_is_what_slack_sdk_verifies(requests: SlackRequests) -> None:
    for request in [
        requests.command("new invoice-sync", user="U0MEMBER1", channel="C0OPS"),
        requests.block_action(
            user="U0OWNER",
            action_id="approve",
            value="42",
            block_id="decide",
            channel="C0OPS",
            message_ts="1.000100",
        ),
        requests.view_submission(
            user="U0OWNER", callback_id="reject", private_metadata="{}", values={}
        ),
        requests.event(requests.app_home_opened("U0OWNER")),
        requests.url_verification("challenge-1"),
    ]:
        assert verifier().is_valid_request(request.body, request.headers)


def test_signature_by_hand(requests: SlackRequests) -> None:
    headers = requests.sign(b"a=1", 1_800_000_000)
    assert headers["X-Slack-Request-Timestamp"] == "1800000000"
    assert headers["X-Slack-Signature"] == verifier().generate_signature(
        timestamp="1800000000", body=b"a=1"
    )
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_stale_timestamp_is_refused(requests: SlackRequests) -> None:
    body = b"a=1"
    assert not verifier().is_valid_request(body, requests.sign(body, int(NOW) - 301))
    assert not verifier().is_valid_request(body, requests.sign(body, int(NOW) + 301))


def test_another_secret_is_refused() -> None:
    request = SlackRequests("other-secret", clock=lambda: NOW).url_verification("c")
    assert not verifier().is_valid_request(request.body, request.headers)


# -- shapes


def test_command_carries_every_field_slack_sends(requests: SlackRequests) -> None:
    request = requests.command(
        "new invoice-sync", user="U0MEMBER1", channel="C0OPS", response_url="http://x/respond/1"
    )
    fields = form(request)

    assert fields == {
        "token": fields["token"],
        "team_id": "T0TEAM",
        "team_domain": "test",
        "channel_id": "C0OPS",
        "channel_name": "c0ops",
        "user_id": "U0MEMBER1",
        "user_name": "u0member1",
        "command": "/trame",
        "text": "new invoice-sync",
        "api_app_id": "A0APP",
        "is_enterprise_install": "false",
        "response_url": "http://x/respond/1",
        "trigger_id": fields["trigger_id"],
    }
    assert len(fields["trigger_id"].split(".")) == 3
    assert request.json() == fields


def test_command_ids_are_fresh(requests: SlackRequests) -> None:
    first = form(requests.command("", user="U1AA", channel="C1AA"))
    second = form(requests.command("", user="U1AA", channel="C1AA"))
    assert first["trigger_id"] != second["trigger_id"]
    assert first["response_url"] != second["response_url"]
    assert first["response_url"].startswith("https://hooks.slack.com/commands/T0TEAM/")


def test_block_action_on_a_message(requests: SlackRequests) -> None:
    message = {"type": "message", "ts": "1.000100", "text": "Run #42", "blocks": CARD}
    request = requests.block_action(
        user="U0OWNER",
        action_id="approve",
        value="42",
        block_id="decide",
        channel="C0APPROVE",
        message_ts="1.000100",
        message=message,
        response_url="http://x/respond/2",
    )
    body = payload(request)

    assert body["type"] == "block_actions"
    assert body["user"] == {
        "id": "U0OWNER",
        "username": "u0owner",
        "name": "u0owner",
        "team_id": "T0TEAM",
    }
    assert body["container"] == {
        "type": "message",
        "message_ts": "1.000100",
        "channel_id": "C0APPROVE",
        "is_ephemeral": False,
    }
    assert body["channel"]["id"] == "C0APPROVE"
    assert body["team"] == {"id": "T0TEAM", "domain": "test"}
    assert body["message"] == message
    assert body["response_url"] == "http://x/respond/2"
    (action,) = body["actions"]
    assert action["action_id"] == "approve"
    assert (action["block_id"], action["value"], action["type"]) == ("decide", "42", "button")
    assert action["text"] == {"type": "plain_text", "text": "Approve"}  # taken from the card
    assert action["action_ts"] == f"{NOW:.6f}"
    assert body["trigger_id"]


def test_block_action_in_a_view(requests: SlackRequests) -> None:
    view = {"id": "V0HOME", "type": "home", "blocks": CARD}
    body = payload(
        requests.block_action(
            user="U0OWNER", action_id="approve", value="42", block_id="decide", view=view
        )
    )
    assert body["container"] == {"type": "view", "view_id": "V0HOME"}
    assert body["view"] == view
    assert "channel" not in body
    assert "response_url" not in body


def test_block_action_on_a_message_needs_its_place(requests: SlackRequests) -> None:
    with pytest.raises(ValueError, match="channel and message_ts"):
        requests.block_action(user="U0OWNER", action_id="a", value="v", block_id="b")


def test_view_submission(requests: SlackRequests) -> None:
    values = {
        "reason": {"reason": text_input("too risky")},
        "when": {"when": selected_option("now")},
    }
    body = payload(
        requests.view_submission(
            user="U0OWNER",
            callback_id="reject",
            private_metadata='{"channel": "C0APPROVE"}',
            values=values,
            view_id="V0MODAL",
        )
    )
    assert body["type"] == "view_submission"
    view = body["view"]
    assert (view["id"], view["type"], view["callback_id"]) == ("V0MODAL", "modal", "reject")
    assert view["private_metadata"] == '{"channel": "C0APPROVE"}'
    assert view["state"]["values"]["reason"]["reason"] == {
        "type": "plain_text_input",
        "value": "too risky",
    }
    assert view["state"]["values"]["when"]["when"]["selected_option"]["value"] == "now"
    assert body["response_urls"] == []


def test_view_closed(requests: SlackRequests) -> None:
    body = payload(requests.view_closed(user="U0OWNER", callback_id="reject", is_cleared=True))
    assert (body["type"], body["view"]["callback_id"], body["is_cleared"]) == (
        "view_closed",
        "reject",
        True,
    )


def test_event_callback(requests: SlackRequests) -> None:
    event = requests.app_home_opened("U0OWNER")
    request = requests.event(event)
    body = json.loads(request.body)

    assert request.headers["Content-Type"] == "application/json"
    assert "X-Slack-Retry-Num" not in request.headers
    assert body["type"] == "event_callback"
    assert body["event"] == {
        "type": "app_home_opened",
        "user": "U0OWNER",
        "channel": "D0OWNER",
        "tab": "home",
        "event_ts": f"{NOW:.6f}",
    }
    assert (body["team_id"], body["api_app_id"], body["event_time"]) == (
        "T0TEAM",
        "A0APP",
        int(NOW),
    )
    assert body["authorizations"][0]["user_id"] == "U0BOT"
    assert body["event_id"].startswith("Ev")
    assert body["event_id"] != json.loads(requests.event(event).body)["event_id"]


def test_event_retry_keeps_the_event_id(requests: SlackRequests) -> None:
    request = requests.event({"type": "app_mention"}, event_id="Ev0SAME", retry_num=2)
    assert json.loads(request.body)["event_id"] == "Ev0SAME"
    assert request.headers["X-Slack-Retry-Num"] == "2"
    assert request.headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert verifier().is_valid_request(request.body, request.headers)


def test_url_verification(requests: SlackRequests) -> None:
    body = json.loads(requests.url_verification("abc").body)
    assert (body["type"], body["challenge"]) == ("url_verification", "abc")


# -- a real Bolt app reads them


@dataclass
class Bot:
    url: str
    fake: FakeSlack
    slack: RunningFake
    seen: list[Json]

    async def post(self, request: SignedRequest) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, data=request.body, headers=request.headers) as answer,
        ):
            return answer.status, await answer.text()


def build_app(client: AsyncWebClient, seen: list[Json]) -> AsyncApp:
    app = AsyncApp(client=client, signing_secret=SECRET, process_before_response=True)

    @app.command("/trame")
    async def command(
        ack: AsyncAck, command: Json, respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        seen.append(command)
        await client.views_open(
            trigger_id=command["trigger_id"],
            view={
                "type": "modal",
                "callback_id": "reject",
                "title": {"type": "plain_text", "text": "Reject"},
                "blocks": [],
            },
        )
        await respond(text=f"Requested {command['text']}")

    @app.action("approve")
    async def approve(ack: AsyncAck, body: Json, client: AsyncWebClient) -> None:
        await ack()
        seen.append(body)
        await client.chat_update(
            channel=body["channel"]["id"],
            ts=body["container"]["message_ts"],
            text="Approved",
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "Approved"}}],
        )

    @app.view("reject")
    async def reject(ack: AsyncAck, view: Json) -> None:
        reason = view["state"]["values"]["reason"]["reason"]["value"]
        await ack(response_action="errors", errors={"reason": f"not enough: {reason}"})

    @app.event("app_home_opened")
    async def home(event: Json, client: AsyncWebClient, request: AsyncBoltRequest) -> None:
        seen.append({"retry": request.headers.get("x-slack-retry-num")})
        await client.views_publish(
            user_id=event["user"],
            view={"type": "home", "blocks": [{"type": "divider"}]},
        )

    return app


@pytest.fixture
async def bot() -> AsyncIterator[Bot]:
    fake = FakeSlack(TOKEN)
    async with await serve(fake) as slack:
        seen: list[Json] = []
        app = build_app(AsyncWebClient(token=TOKEN, base_url=slack.api_url), seen)

        async def events(request: web.Request) -> web.Response:
            return await to_aiohttp_response(
                await app.async_dispatch(await to_bolt_request(request))
            )

        web_app = web.Application()
        web_app.router.add_post("/slack/events", events)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            yield Bot(f"http://127.0.0.1:{port}/slack/events", fake, slack, seen)
        finally:
            await runner.cleanup()


async def test_bolt_answers_url_verification(bot: Bot) -> None:
    status, text = await bot.post(SlackRequests(SECRET).url_verification("c-1"))
    assert (status, json.loads(text)) == (200, {"challenge": "c-1"})


async def test_bolt_refuses_a_stale_request(bot: Bot) -> None:
    requests = SlackRequests(SECRET)
    fresh = requests.command("x", user="U0MEMBER1", channel="C0OPS")
    stale = SignedRequest(fresh.body, requests.sign(fresh.body, int(time.time()) - 600))
    status, _ = await bot.post(stale)
    assert status == 401
    assert bot.seen == []


async def test_bolt_runs_a_command(bot: Bot) -> None:
    requests = SlackRequests(SECRET)
    response_url = bot.fake.response_url(bot.slack.url, "cmd-1")
    request = requests.command(
        "invoice-sync", user="U0MEMBER1", channel="C0OPS", response_url=response_url
    )
    status, _ = await bot.post(request)

    assert status == 200
    (command,) = bot.seen
    assert (command["user_id"], command["channel_id"]) == ("U0MEMBER1", "C0OPS")
    (opened,) = bot.fake.calls_to("views.open")
    assert opened.ok
    assert opened.args["trigger_id"] == form(request)["trigger_id"]
    assert [r.text for r in bot.fake.responses] == ["Requested invoice-sync"]


async def test_bolt_handles_a_click_on_the_fakes_message(bot: Bot) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=bot.slack.api_url)
    posted = await client.chat_postMessage(channel="C0APPROVE", text="Run #42", blocks=CARD)
    request = SlackRequests(SECRET).block_action(
        user="U0OWNER",
        action_id="approve",
        value="42",
        block_id="decide",
        channel="C0APPROVE",
        message_ts=posted["ts"],
        message=posted["message"],
    )
    status, _ = await bot.post(request)

    assert status == 200
    assert bot.seen[0]["actions"][0]["value"] == "42"
    assert bot.fake.messages("C0APPROVE")[0].text == "Approved"


async def test_bolt_reads_a_view_submission(bot: Bot) -> None:
    request = SlackRequests(SECRET).view_submission(
        user="U0OWNER",
        callback_id="reject",
        private_metadata="",
        values={"reason": {"reason": text_input("meh")}},
    )
    status, text = await bot.post(request)
    assert status == 200
    assert json.loads(text) == {
        "response_action": "errors",
        "errors": {"reason": "not enough: meh"},
    }


async def test_bolt_handles_an_event_and_its_retry(bot: Bot) -> None:
    requests = SlackRequests(SECRET)
    event = requests.app_home_opened("U0OWNER")
    assert (await bot.post(requests.event(event, event_id="Ev0ONE")))[0] == 200
    assert (await bot.post(requests.event(event, event_id="Ev0ONE", retry_num=1)))[0] == 200

    assert bot.seen == [{"retry": None}, {"retry": ["1"]}]
    assert bot.fake.home_views["U0OWNER"].payload["blocks"] == [{"type": "divider"}]

"""The fake Slack Web API through slack_sdk's real client over loopback HTTP: each method, each
refusal Slack would give, and the faults tests inject."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from trame_bot.sandbox.block_kit import block_errors
from trame_bot.sandbox.fake_slack import BOT_USER_ID, FakeSlack, RunningFake, serve

TOKEN = "xoxb-fake-token"
CHANNEL = "C0APPROVE"

Json = dict[str, Any]


# -- Block Kit helpers: small and valid unless a test breaks them


def plain(text: str) -> Json:
    return {"type": "plain_text", "text": text}


def mrkdwn(text: str) -> Json:
    return {"type": "mrkdwn", "text": text}


def section(text: str = "A run waits for approval", **extra: Any) -> Json:
    return {"type": "section", "text": mrkdwn(text), **extra}


def button(action_id: str = "approve", text: str = "Approve", **extra: Any) -> Json:
    return {"type": "button", "action_id": action_id, "text": plain(text), "value": "42", **extra}


def actions(*elements: Json, **extra: Any) -> Json:
    return {"type": "actions", "elements": list(elements), **extra}


def confirm(**overrides: Any) -> Json:
    dialog = {
        "title": plain("Approve?"),
        "text": mrkdwn("The run starts *at once*."),
        "confirm": plain("Approve"),
        "deny": plain("Cancel"),
    }
    return {**dialog, **overrides}


def option(text: str = "One", value: str = "1") -> Json:
    return {"text": plain(text), "value": value}


def select(options: list[Json], **extra: Any) -> Json:
    return {
        "type": "static_select",
        "action_id": "pick",
        "placeholder": plain("Pick one"),
        "options": options,
        **extra,
    }


def text_input(**extra: Any) -> Json:
    return {"type": "plain_text_input", "action_id": "reason", **extra}


def input_block(element: Json, **extra: Any) -> Json:
    return {
        "type": "input",
        "block_id": "reason",
        "label": plain("Reason"),
        "element": element,
        **extra,
    }


def modal(blocks: list[Json] | None = None, **extra: Any) -> Json:
    return {
        "type": "modal",
        "callback_id": "reject",
        "title": plain("Reject run"),
        "submit": plain("Reject"),
        "close": plain("Cancel"),
        "blocks": [input_block(text_input())] if blocks is None else blocks,
        **extra,
    }


def approval_card() -> list[Json]:
    """A realistic card: header, section with fields and accessory, context, divider, actions."""
    return [
        {"type": "header", "block_id": "title", "text": plain("Invoice sync: run #42")},
        {
            "type": "section",
            "block_id": "summary",
            "text": mrkdwn("*Pilot* run requested by <@U0MEMBER1>"),
            "fields": [mrkdwn("*Workflow*\ninvoice-sync"), mrkdwn("*Steps*\n3")],
            "accessory": button("details", "Details", value="run:42"),
        },
        {"type": "context", "elements": [mrkdwn("Plan fingerprint `3f9a…`"), plain("2 reviewers")]},
        {"type": "divider"},
        {
            "type": "actions",
            "block_id": "decide",
            "elements": [
                button("approve", "Approve", style="primary", confirm=confirm()),
                button("reject", "Reject", style="danger"),
                select([option("Later", "later"), option("Never", "never")]),
            ],
        },
    ]


# -- fixtures


@pytest.fixture
def fake() -> FakeSlack:
    return FakeSlack(TOKEN)


@pytest.fixture
async def running(fake: FakeSlack) -> AsyncIterator[RunningFake]:
    async with await serve(fake) as running:
        yield running


@pytest.fixture
def client(running: RunningFake) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=running.api_url)


async def refusal(call: Any) -> Json:
    """Slack's answer to a refused call, checking it came as HTTP 200 with ok=false."""
    with pytest.raises(SlackApiError) as caught:
        await call
    assert caught.value.response.status_code == 200
    data = caught.value.response.data
    assert isinstance(data, dict)
    assert data["ok"] is False
    return data


# -- serving, auth and recording


async def test_serve_binds_a_free_loopback_port(running: RunningFake) -> None:
    assert running.url.startswith("http://127.0.0.1:")
    assert running.url.endswith("/")
    assert running.api_url == running.url + "api/"


async def test_auth_test_names_the_bot(client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert answer["team"] == "Test Team"
    assert answer["team_id"] == "T0TEAM"
    assert (answer["user"], answer["user_id"], answer["bot_id"]) == ("trame-bot", "U0BOT", "B0BOT")
    assert answer["url"].startswith("https://")


async def test_wrong_token_is_invalid_auth(running: RunningFake) -> None:
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=running.api_url)
    assert (await refusal(wrong.auth_test()))["error"] == "invalid_auth"


async def test_missing_token_is_not_authed(running: RunningFake) -> None:
    anonymous = AsyncWebClient(base_url=running.api_url)
    assert (await refusal(anonymous.auth_test()))["error"] == "not_authed"


async def test_token_may_come_as_a_form_argument(fake: FakeSlack, running: RunningFake) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{running.api_url}auth.test", data={"token": TOKEN}) as answer,
    ):
        assert answer.status == 200
        assert (await answer.json())["ok"] is True
    assert "token" not in fake.calls[0].args  # a secret: never recorded


async def test_unknown_method(client: AsyncWebClient) -> None:
    assert (await refusal(client.api_call("chat.shout")))["error"] == "unknown_method"


async def test_every_call_is_recorded_with_its_outcome(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="hello")
    await refusal(client.api_call("chat.postMessage", json={"channel": CHANNEL, "text": ""}))

    assert [call.method for call in fake.calls] == ["chat.postMessage", "chat.postMessage"]
    first, second = fake.calls_to("chat.postMessage")
    assert first.ok
    assert first.args == {"channel": CHANNEL, "text": "hello"}
    assert not second.ok
    assert second.error == "no_text"
    assert first.at <= second.at
    assert fake.calls_to("auth.test") == []


# -- chat.*


async def test_post_message_stores_it_and_answers_like_slack(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    answer = await client.chat_postMessage(channel=CHANNEL, text="hello", blocks=[section()])

    assert answer["channel"] == CHANNEL
    assert answer["message"]["text"] == "hello"
    assert answer["message"]["bot_id"] == "B0BOT"
    (message,) = fake.messages(CHANNEL)
    assert (message.ts, message.text, message.user) == (answer["ts"], "hello", BOT_USER_ID)
    assert message.blocks == [section()]
    assert fake.message(CHANNEL, answer["ts"]) is message
    assert fake.channels() == [CHANNEL]


async def test_ts_are_unique_and_increasing(client: AsyncWebClient) -> None:
    stamps = [(await client.chat_postMessage(channel=CHANNEL, text=str(i)))["ts"] for i in range(5)]
    assert len(set(stamps)) == 5
    assert stamps == sorted(stamps, key=float)
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)


async def test_thread_reply(fake: FakeSlack, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel=CHANNEL, text="card")
    await client.chat_postMessage(channel=CHANNEL, text="approved", thread_ts=parent["ts"])
    assert [m.thread_ts for m in fake.messages(CHANNEL)] == [None, parent["ts"]]


async def test_post_to_a_user_lands_in_the_dm(fake: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.chat_postMessage(channel="U0OWNER", text="psst")
    assert answer["channel"] == "D0OWNER"
    assert [m.text for m in fake.messages("D0OWNER")] == ["psst"]


async def test_post_to_a_malformed_channel_is_refused(client: AsyncWebClient) -> None:
    answer = await refusal(client.chat_postMessage(channel="approvals", text="x"))
    assert answer["error"] == "channel_not_found"


async def test_blocks_may_arrive_as_a_json_string(fake: FakeSlack, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="card", blocks=json.dumps(approval_card()))
    assert fake.messages(CHANNEL)[0].blocks == approval_card()


async def test_blocks_that_are_not_json_are_refused(client: AsyncWebClient) -> None:
    answer = await refusal(client.chat_postMessage(channel=CHANNEL, text="x", blocks="[{"))
    assert answer["error"] == "invalid_blocks_format"


async def test_update_without_blocks_keeps_the_old_blocks(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="card", blocks=approval_card())
    answer = await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="Approved")

    message = fake.messages(CHANNEL)[0]
    assert message.text == "Approved"
    assert message.blocks == approval_card()  # the buttons are still there
    assert message.edited
    assert [(r.text, r.blocks) for r in message.history] == [("card", approval_card())]
    assert answer["message"]["blocks"] == approval_card()
    assert "edited" in answer["message"]


async def test_update_with_blocks_replaces_them(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="card", blocks=approval_card())
    await client.chat_update(
        channel=CHANNEL, ts=posted["ts"], text="Approved", blocks=[section("Approved")]
    )
    assert fake.messages(CHANNEL)[0].blocks == [section("Approved")]


async def test_update_of_an_unknown_message(client: AsyncWebClient) -> None:
    answer = await refusal(client.chat_update(channel=CHANNEL, ts="1.000001", text="x"))
    assert answer["error"] == "message_not_found"


async def test_update_checks_the_channel_too(client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="card")
    answer = await refusal(client.chat_update(channel="C0OTHER", ts=posted["ts"], text="x"))
    assert answer["error"] == "message_not_found"


async def test_update_of_someone_elses_message(fake: FakeSlack, client: AsyncWebClient) -> None:
    theirs = fake.add_message(CHANNEL, "hi", user="U0MEMBER1")
    answer = await refusal(client.chat_update(channel=CHANNEL, ts=theirs.ts, text="x"))
    assert answer["error"] == "cant_update_message"


async def test_update_validates_like_post(client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="card")
    answer = await refusal(
        client.chat_update(channel=CHANNEL, ts=posted["ts"], text="x", blocks=[{"type": "table"}])
    )
    assert answer["error"] == "invalid_blocks"


async def test_post_ephemeral(fake: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.chat_postEphemeral(channel=CHANNEL, user="U0MEMBER1", text="only you")
    (ephemeral,) = fake.ephemerals
    assert (ephemeral.channel, ephemeral.user, ephemeral.text) == (CHANNEL, "U0MEMBER1", "only you")
    assert ephemeral.ts == answer["message_ts"]
    assert fake.messages(CHANNEL) == []


async def test_post_ephemeral_needs_a_user(client: AsyncWebClient) -> None:
    answer = await refusal(client.chat_postEphemeral(channel=CHANNEL, user="bob", text="x"))
    assert answer["error"] == "user_not_found"


# -- message validation


async def test_a_realistic_card_is_accepted(fake: FakeSlack, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="Run #42 waits", blocks=approval_card())
    assert fake.messages(CHANNEL)[0].blocks == approval_card()


async def test_a_card_built_with_slack_sdk_models_is_accepted(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    blocks = [
        HeaderBlock(text="Run #42"),
        SectionBlock(
            text=MarkdownTextObject(text="*Pilot* run"),
            fields=[MarkdownTextObject(text="*Steps*\n3")],
            accessory=ButtonElement(text="Details", action_id="details", value="42"),
        ),
        ContextBlock(elements=[MarkdownTextObject(text="fingerprint")]),
        DividerBlock(),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Approve",
                    action_id="approve",
                    value="42",
                    style="primary",
                    confirm=ConfirmObject(title="Sure?", text="Go", confirm="Yes", deny="No"),
                )
            ]
        ),
    ]
    await client.chat_postMessage(channel=CHANNEL, text="Run #42", blocks=blocks)
    assert len(fake.messages(CHANNEL)[0].blocks) == 5


async def test_message_needs_text_or_blocks(client: AsyncWebClient) -> None:
    # slack_sdk warns before sending an empty message; api_call sends it as it is
    empty = client.api_call("chat.postMessage", json={"channel": CHANNEL, "text": ""})
    assert (await refusal(empty))["error"] == "no_text"


async def test_text_over_40000_characters(client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="x" * 40_000)
    answer = await refusal(client.chat_postMessage(channel=CHANNEL, text="x" * 40_001))
    assert answer["error"] == "msg_too_long"


async def test_more_than_50_blocks(client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="x", blocks=[{"type": "divider"}] * 50)
    answer = await refusal(
        client.chat_postMessage(channel=CHANNEL, text="x", blocks=[{"type": "divider"}] * 51)
    )
    assert answer["error"] == "invalid_blocks"
    assert any("[json-pointer:/blocks]" in error for error in answer["errors"])


async def test_block_text_over_13000_characters(client: AsyncWebClient) -> None:
    blocks = [section("x" * 2600) for _ in range(5)]
    await client.chat_postMessage(channel=CHANNEL, text="x", blocks=blocks)
    blocks.append(section("x"))
    answer = await refusal(client.chat_postMessage(channel=CHANNEL, text="x", blocks=blocks))
    assert answer["error"] == "msg_blocks_too_long"


INVALID_BLOCKS = [
    pytest.param([{"type": "table"}], "/blocks/0/type", id="unknown-block-type"),
    pytest.param(["divider"], "/blocks/0", id="block-not-an-object"),
    pytest.param([section(color="red")], "/blocks/0/color", id="unknown-block-key"),
    pytest.param([section(block_id="b" * 256)], "/blocks/0/block_id", id="block-id-256"),
    pytest.param(
        [section(block_id="same"), section(block_id="same")],
        "/blocks/1/block_id",
        id="block-id-twice",
    ),
    pytest.param(
        [{"type": "section", "text": {"type": "markdown", "text": "x"}}],
        "/blocks/0/text/type",
        id="text-type",
    ),
    pytest.param([{"type": "section", "text": mrkdwn("")}], "/blocks/0/text/text", id="text-empty"),
    pytest.param(
        [{"type": "section", "text": {"type": "plain_text"}}],
        "/blocks/0/text/text",
        id="text-missing",
    ),
    pytest.param(
        [{"type": "section", "text": {**mrkdwn("x"), "emoji": True}}],
        "/blocks/0/text/emoji",
        id="emoji-on-mrkdwn",
    ),
    pytest.param([section("x" * 3001)], "/blocks/0/text/text", id="section-text-3001"),
    pytest.param(
        [{"type": "section", "fields": [mrkdwn("f")] * 11}],
        "/blocks/0/fields",
        id="section-11-fields",
    ),
    pytest.param(
        [{"type": "section", "fields": [mrkdwn("f" * 2001)]}],
        "/blocks/0/fields/0/text",
        id="field-2001",
    ),
    pytest.param([{"type": "section"}], "/blocks/0", id="section-without-text-or-fields"),
    pytest.param(
        [{"type": "section", "text": mrkdwn("x"), "accessory": text_input()}],
        "/blocks/0/accessory/type",
        id="accessory-not-allowed",
    ),
    pytest.param(
        [{"type": "header", "text": mrkdwn("x")}], "/blocks/0/text/type", id="header-mrkdwn"
    ),
    pytest.param(
        [{"type": "header", "text": plain("x" * 151)}], "/blocks/0/text/text", id="header-151"
    ),
    pytest.param([{"type": "header"}], "/blocks/0/text", id="header-without-text"),
    pytest.param([{"type": "context", "elements": []}], "/blocks/0/elements", id="context-empty"),
    pytest.param(
        [{"type": "context", "elements": [mrkdwn("c")] * 11}], "/blocks/0/elements", id="context-11"
    ),
    pytest.param(
        [{"type": "context", "elements": [button()]}],
        "/blocks/0/elements/0/type",
        id="context-button",
    ),
    pytest.param([actions()], "/blocks/0/elements", id="actions-empty"),
    pytest.param(
        [actions(*[button(f"b{i}") for i in range(26)])], "/blocks/0/elements", id="actions-26"
    ),
    pytest.param(
        [actions({"type": "image", "image_url": "https://x/y.png", "alt_text": "y"})],
        "/blocks/0/elements/0/type",
        id="actions-image",
    ),
    pytest.param(
        [actions(button(text="x" * 76))], "/blocks/0/elements/0/text/text", id="button-text-76"
    ),
    pytest.param(
        [actions({**button(), "text": mrkdwn("*Go*")})],
        "/blocks/0/elements/0/text/type",
        id="button-text-mrkdwn",
    ),
    pytest.param(
        [actions(button(value="v" * 2001))], "/blocks/0/elements/0/value", id="value-2001"
    ),
    pytest.param(
        [actions(button(action_id="a" * 256))], "/blocks/0/elements/0/action_id", id="action-id-256"
    ),
    pytest.param(
        [actions(button("go")), actions(button("go"))],
        "/blocks/1/elements/0/action_id",
        id="action-id-twice",
    ),
    pytest.param(
        [actions(button(style="secondary"))], "/blocks/0/elements/0/style", id="button-style"
    ),
    pytest.param(
        [actions(button(confirm=confirm(title=plain("t" * 101))))],
        "/blocks/0/elements/0/confirm/title/text",
        id="confirm-title-101",
    ),
    pytest.param(
        [actions(button(confirm=confirm(text=mrkdwn("t" * 301))))],
        "/blocks/0/elements/0/confirm/text/text",
        id="confirm-text-301",
    ),
    pytest.param(
        [actions(button(confirm=confirm(confirm=plain("c" * 31))))],
        "/blocks/0/elements/0/confirm/confirm/text",
        id="confirm-confirm-31",
    ),
    pytest.param(
        [actions(button(confirm=confirm(deny=plain("d" * 31))))],
        "/blocks/0/elements/0/confirm/deny/text",
        id="confirm-deny-31",
    ),
    pytest.param(
        [actions(button(confirm=confirm(title=mrkdwn("Sure?"))))],
        "/blocks/0/elements/0/confirm/title/type",
        id="confirm-title-mrkdwn",
    ),
    pytest.param(
        [actions(button(confirm={"title": plain("Sure?"), "text": mrkdwn("Go")}))],
        "/blocks/0/elements/0/confirm/confirm",
        id="confirm-incomplete",
    ),
    pytest.param(
        [actions(select([option("o" * 76)]))],
        "/blocks/0/elements/0/options/0/text/text",
        id="option-text-76",
    ),
    pytest.param(
        [actions(select([option(value="v" * 151)]))],
        "/blocks/0/elements/0/options/0/value",
        id="option-value-151",
    ),
    pytest.param(
        [actions(select([option(str(i), str(i)) for i in range(101)]))],
        "/blocks/0/elements/0/options",
        id="select-101-options",
    ),
    pytest.param(
        [actions(select([option()], initial_option=option("Two", "2")))],
        "/blocks/0/elements/0/initial_option",
        id="select-initial-not-an-option",
    ),
    pytest.param(
        [
            actions(
                {
                    "type": "radio_buttons",
                    "action_id": "r",
                    "options": [{"text": mrkdwn("r" * 76), "value": "1"}],
                }
            )
        ],
        "/blocks/0/elements/0/options/0/text/text",
        id="radio-option-text-76",
    ),
    pytest.param(
        [input_block(text_input(min_length=3001))],
        "/blocks/0/element/min_length",
        id="input-min-length-3001",
    ),
    pytest.param(
        [input_block(text_input(max_length=3001))],
        "/blocks/0/element/max_length",
        id="input-max-length-3001",
    ),
    pytest.param(
        [input_block(text_input(max_length=5, initial_value="toolong"))],
        "/blocks/0/element/initial_value",
        id="initial-value-over-max-length",
    ),
    pytest.param(
        [{"type": "input", "element": text_input()}], "/blocks/0/label", id="input-without-label"
    ),
    pytest.param(
        [input_block(text_input(), label=plain("l" * 2001))],
        "/blocks/0/label/text",
        id="input-label-2001",
    ),
    pytest.param(
        [input_block(text_input(), label=mrkdwn("*Reason*"))],
        "/blocks/0/label/type",
        id="input-label-mrkdwn",
    ),
    pytest.param(
        [{"type": "input", "label": plain("Reason")}],
        "/blocks/0/element",
        id="input-without-element",
    ),
    pytest.param([input_block(button())], "/blocks/0/element/type", id="input-button"),
    pytest.param(
        [{"type": "image", "image_url": "https://example.com/a.png"}],
        "/blocks/0/alt_text",
        id="image-without-alt-text",
    ),
    pytest.param(
        # Slack's rules that only slack_sdk's models check here: a date must be a date.
        [actions({"type": "datepicker", "action_id": "when", "initial_date": "2026-13-45"})],
        "/blocks/0/elements/0",
        id="sdk-net-datepicker-date",
    ),
]


@pytest.mark.parametrize(("blocks", "pointer"), INVALID_BLOCKS)
async def test_invalid_blocks_are_refused(
    fake: FakeSlack, client: AsyncWebClient, blocks: list[Any], pointer: str
) -> None:
    answer = await refusal(client.chat_postMessage(channel=CHANNEL, text="x", blocks=blocks))

    assert answer["error"] == "invalid_blocks"
    assert any(f"[json-pointer:{pointer}]" in error for error in answer["errors"]), answer["errors"]
    assert answer["response_metadata"]["messages"]
    assert fake.messages(CHANNEL) == []


def test_block_errors_is_usable_without_http() -> None:
    assert block_errors(approval_card()) == []
    assert block_errors([section("x" * 3001)]) == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]


# -- views


async def test_views_open_returns_the_view_with_an_id(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    answer = await client.views_open(trigger_id="12345.98765.abcd", view=modal())

    view = answer["view"]
    assert view["id"].startswith("V")
    assert view["callback_id"] == "reject"
    assert view["state"] == {"values": {}}
    assert fake.views[view["id"]].payload == modal()
    assert fake.views[view["id"]].trigger_id == "12345.98765.abcd"


async def test_views_open_needs_a_trigger_id(client: AsyncWebClient) -> None:
    answer = await refusal(client.views_open(trigger_id="", view=modal()))
    assert answer["error"] == "invalid_trigger_id"


async def test_views_open_takes_the_view_as_a_json_string(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    answer = await client.views_open(trigger_id="1.2.3", view=json.dumps(modal()))  # type: ignore[arg-type]
    assert fake.views[answer["view"]["id"]].payload == modal()


async def test_views_update_replaces_the_view(fake: FakeSlack, client: AsyncWebClient) -> None:
    opened = await client.views_open(trigger_id="1.2.3", view=modal())
    view_id = opened["view"]["id"]
    updated = await client.views_update(view_id=view_id, view=modal([section("Done")]))

    assert updated["view"]["id"] == view_id
    assert updated["view"]["hash"] != opened["view"]["hash"]
    assert fake.views[view_id].payload["blocks"] == [section("Done")]


async def test_views_update_of_an_unknown_view(client: AsyncWebClient) -> None:
    answer = await refusal(client.views_update(view_id="V0NOPE", view=modal()))
    assert answer["error"] == "not_found"


async def test_views_update_with_a_stale_hash(client: AsyncWebClient) -> None:
    opened = await client.views_open(trigger_id="1.2.3", view=modal())
    answer = await refusal(
        client.views_update(view_id=opened["view"]["id"], hash="0.0", view=modal())
    )
    assert answer["error"] == "hash_conflict"


async def test_views_push(fake: FakeSlack, client: AsyncWebClient) -> None:
    opened = await client.views_open(trigger_id="1.2.3", view=modal())
    pushed = await client.views_push(trigger_id="4.5.6", view=modal([section("More")]))
    assert fake.views[pushed["view"]["id"]].previous_view_id == opened["view"]["id"]
    assert (await refusal(client.views_push(trigger_id="", view=modal())))["error"] == (
        "invalid_trigger_id"
    )


async def test_views_publish_keeps_one_home_per_user(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    home = {"type": "home", "blocks": [section("Your pending approvals")]}
    first = await client.views_publish(user_id="U0OWNER", view=home)
    again = await client.views_publish(
        user_id="U0OWNER", view={**home, "blocks": [section("None")]}
    )

    assert first["view"]["id"] == again["view"]["id"]
    assert fake.home_views["U0OWNER"].payload["blocks"] == [section("None")]
    assert fake.home_views["U0OWNER"].user == "U0OWNER"


async def test_views_publish_needs_a_home_view(client: AsyncWebClient) -> None:
    answer = await refusal(client.views_publish(user_id="U0OWNER", view=modal()))
    assert answer["error"] == "invalid_arguments"
    assert any("/view/type" in m for m in answer["response_metadata"]["messages"])


async def test_views_open_refuses_a_home_view(client: AsyncWebClient) -> None:
    answer = await refusal(
        client.views_open(trigger_id="1.2.3", view={"type": "home", "blocks": []})
    )
    assert answer["error"] == "invalid_arguments"


async def test_view_over_250_kb(client: AsyncWebClient) -> None:
    blocks = [section("x" * 2600, block_id=f"b{i}") for i in range(100)]
    answer = await refusal(
        client.views_publish(user_id="U0OWNER", view={"type": "home", "blocks": blocks})
    )
    assert answer["error"] == "view_too_large"


INVALID_VIEWS = [
    pytest.param(modal(title=plain("t" * 25)), "/view/title/text", id="title-25"),
    pytest.param(modal(title=mrkdwn("Title")), "/view/title/type", id="title-mrkdwn"),
    pytest.param({k: v for k, v in modal().items() if k != "title"}, "/view/title", id="no-title"),
    pytest.param(modal(submit=plain("s" * 25)), "/view/submit/text", id="submit-25"),
    pytest.param(modal(close=plain("c" * 25)), "/view/close/text", id="close-25"),
    pytest.param(modal(callback_id="c" * 256), "/view/callback_id", id="callback-id-256"),
    pytest.param(modal(private_metadata="m" * 3001), "/view/private_metadata", id="metadata-3001"),
    pytest.param(modal([{"type": "divider"}] * 101), "/view/blocks", id="101-blocks"),
    pytest.param(modal(colour="blue"), "/view/colour", id="unknown-key"),
    pytest.param(
        {k: v for k, v in modal().items() if k != "submit"},
        "/view/submit",
        id="input-without-submit",
    ),
    pytest.param(modal([section("x" * 3001)]), "/view/blocks/0/text/text", id="invalid-block"),
]


@pytest.mark.parametrize(("view", "pointer"), INVALID_VIEWS)
async def test_invalid_modals_are_refused(
    fake: FakeSlack, client: AsyncWebClient, view: Json, pointer: str
) -> None:
    answer = await refusal(client.views_open(trigger_id="1.2.3", view=view))

    assert answer["error"] == "invalid_arguments"
    messages = answer["response_metadata"]["messages"]
    assert any(f"[json-pointer:{pointer}]" in m for m in messages), messages
    assert fake.views == {}


async def test_a_modal_may_hold_100_blocks(client: AsyncWebClient) -> None:
    await client.views_open(trigger_id="1.2.3", view=modal([{"type": "divider"}] * 100))


# -- conversations, users


async def test_conversations_open_gives_the_dm_channel(client: AsyncWebClient) -> None:
    answer = await client.conversations_open(users="U0OWNER")
    assert answer["channel"]["id"] == "D0OWNER"


async def test_conversations_open_needs_users(client: AsyncWebClient) -> None:
    answer = await refusal(client.conversations_open(users="nobody"))
    assert answer["error"] == "user_not_found"


async def test_users_info(fake: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.users_info(user="U0OWNER")

    user = answer["user"]
    assert user["id"] == "U0OWNER"
    assert user["tz"] == "Europe/Paris"
    assert user["is_bot"] is False
    assert user["name"]
    assert user["real_name"]
    assert fake.calls_to("users.info")[0].args == {"user": "U0OWNER"}


async def test_users_info_of_a_known_user(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_user("U0CLIENT1", name="claire", real_name="Claire Client", tz="America/New_York")
    user = (await client.users_info(user="U0CLIENT1"))["user"]
    assert (user["name"], user["real_name"], user["tz"]) == (
        "claire",
        "Claire Client",
        "America/New_York",
    )


async def test_users_info_of_a_malformed_id(client: AsyncWebClient) -> None:
    assert (await refusal(client.users_info(user="bob")))["error"] == "user_not_found"


# -- files


async def test_files_upload_v2_shares_the_file_in_the_channel(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    answer = await client.files_upload_v2(
        channel=CHANNEL,
        content="step,status\n1,ok\n",
        filename="run-42.csv",
        title="Run 42",
        initial_comment="The run's report",
    )

    file_id = answer["file"]["id"]
    stored = fake.files[file_id]
    assert (stored.name, stored.title, stored.channel) == ("run-42.csv", "Run 42", CHANNEL)
    assert stored.content == b"step,status\n1,ok\n"
    (message,) = fake.messages(CHANNEL)
    assert message.text == "The run's report"
    assert message.files == [stored]
    assert [c.method for c in fake.calls] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]


async def test_complete_upload_of_an_unknown_file(client: AsyncWebClient) -> None:
    answer = await refusal(
        client.files_completeUploadExternal(
            files=[{"id": "F0NOPE", "title": "x"}], channel_id=CHANNEL
        )
    )
    assert answer["error"] == "file_not_found"


async def test_complete_upload_before_the_bytes_arrive(client: AsyncWebClient) -> None:
    url = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    answer = await refusal(
        client.files_completeUploadExternal(files=[{"id": url["file_id"]}], channel_id=CHANNEL)
    )
    assert answer["error"] == "file_not_found"


async def test_upload_url_points_at_the_fake(running: RunningFake, client: AsyncWebClient) -> None:
    url = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    assert url["upload_url"] == f"{running.url}upload/{url['file_id']}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{running.url}upload/F0NOPE", data=b"abc") as answer,
    ):
        assert answer.status == 404


# -- faults


async def test_rate_limit_is_retried_by_the_retry_handler(
    fake: FakeSlack, running: RunningFake
) -> None:
    fake.fail_next("chat.postMessage", retry_after=0)
    client = AsyncWebClient(
        token=TOKEN,
        base_url=running.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    await client.chat_postMessage(channel=CHANNEL, text="hello")

    first, second = fake.calls_to("chat.postMessage")
    assert (first.status, first.error) == (429, "ratelimited")
    assert second.ok
    assert len(fake.messages(CHANNEL)) == 1


async def test_rate_limit_without_a_retry_handler(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel=CHANNEL, text="hello")

    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "7"
    assert caught.value.response["error"] == "ratelimited"
    await client.chat_postMessage(channel=CHANNEL, text="hello")  # only the next call fails


async def test_server_error(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next("users.info", status=500)
    with pytest.raises(SlackApiError) as caught:
        await client.users_info(user="U0OWNER")
    assert caught.value.response.status_code == 500
    assert fake.calls[0].status == 500


async def test_injected_slack_error(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next("chat.postMessage", error="not_in_channel")
    answer = await refusal(client.chat_postMessage(channel=CHANNEL, text="hello"))
    assert answer["error"] == "not_in_channel"
    assert fake.calls[0].error == "not_in_channel"
    assert fake.messages(CHANNEL) == []


async def test_fault_for_any_method_and_several_calls(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.fail_next(error="fatal_error", count=2)
    await refusal(client.auth_test())
    await refusal(client.users_info(user="U0OWNER"))
    await client.auth_test()


async def test_fault_for_another_method_does_not_fire(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.fail_next("views.open", error="expired_trigger_id")
    await client.chat_postMessage(channel=CHANNEL, text="hello")
    assert (await refusal(client.views_open(trigger_id="1.2.3", view=modal())))["error"] == (
        "expired_trigger_id"
    )


async def test_hang_makes_the_client_time_out(fake: FakeSlack) -> None:
    running = await serve(fake)
    fake.hang_next("chat.postMessage", 30)
    impatient = AsyncWebClient(token=TOKEN, base_url=running.api_url, timeout=1)
    with pytest.raises(TimeoutError):
        await impatient.chat_postMessage(channel=CHANNEL, text="hello")
    assert fake.calls[0].status is None  # still pending on the server

    started = time.monotonic()
    await running.close()  # releases the hang instead of waiting 30 s
    assert time.monotonic() - started < 2
    assert fake.calls[0].ok


async def test_a_short_hang_delays_the_answer(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.hang_next(None, 0.2)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.2
    assert fake.calls[0].ok


# -- response_url


async def test_response_url_records_the_answer(fake: FakeSlack, running: RunningFake) -> None:
    url = fake.response_url(running.url, "cmd-1")
    assert url == f"{running.url}respond/cmd-1"

    answer = await AsyncWebhookClient(url).send(
        text="Run #42 requested", blocks=[section()], response_type="in_channel"
    )

    assert (answer.status_code, answer.body) == (200, "ok")
    (response,) = fake.responses
    assert (response.key, response.text, response.response_type) == (
        "cmd-1",
        "Run #42 requested",
        "in_channel",
    )
    assert response.blocks == [section()]
    assert response.error is None


async def test_response_url_refuses_invalid_blocks(fake: FakeSlack, running: RunningFake) -> None:
    url = fake.response_url(running.url, "cmd-1")
    answer = await AsyncWebhookClient(url).send(text="x", blocks=[{"type": "section"}])
    assert (answer.status_code, answer.body) == (400, "invalid_blocks")
    assert fake.responses[0].error == "invalid_blocks"


async def test_response_url_refuses_an_empty_answer(fake: FakeSlack, running: RunningFake) -> None:
    answer = await AsyncWebhookClient(fake.response_url(running.url, "k")).send_dict(
        {"response_type": "ephemeral"}
    )
    assert (answer.status_code, answer.body) == (400, "no_text")


async def test_response_url_works_five_times(fake: FakeSlack, running: RunningFake) -> None:
    webhook = AsyncWebhookClient(fake.response_url(running.url, "k"))
    statuses = [(await webhook.send(text=str(i))).status_code for i in range(6)]
    assert statuses == [200] * 5 + [404]


async def test_response_url_replaces_and_deletes_the_original(
    fake: FakeSlack, client: AsyncWebClient, running: RunningFake
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="card", blocks=approval_card())
    url = fake.response_url(running.url, "act-1", channel=CHANNEL, message_ts=posted["ts"])
    webhook = AsyncWebhookClient(url)

    await webhook.send(text="Approved", blocks=[section("Approved")], replace_original=True)
    message = fake.messages(CHANNEL)[0]
    assert (message.text, message.blocks, message.edited) == (
        "Approved",
        [section("Approved")],
        True,
    )

    await webhook.send_dict({"delete_original": True})
    assert fake.messages(CHANNEL) == []


async def test_response_url_posts_ephemeral_or_in_channel(
    fake: FakeSlack, running: RunningFake
) -> None:
    url = fake.response_url(running.url, "cmd-1", channel=CHANNEL, user="U0MEMBER1")
    await AsyncWebhookClient(url).send(text="only you")
    await AsyncWebhookClient(url).send(text="everyone", response_type="in_channel")

    assert [(e.user, e.text) for e in fake.ephemerals] == [("U0MEMBER1", "only you")]
    assert [m.text for m in fake.messages(CHANNEL)] == ["everyone"]

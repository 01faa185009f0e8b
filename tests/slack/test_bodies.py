"""Every request Slack can send reaches its listener, whatever its fields hold.

Bolt's own body reader took any form containing the word "payload" for an interactivity
payload, so `/trame pause payload-export` answered 404 "unhandled request". These tests go
through signed HTTP requests into the running server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import factories as f
from tests.harness import Answer, Bot
from trame_bot.domain.enums import Status
from trame_bot.services import workflows
from trame_bot.slack.bodies import read_body

HELP_LINE = "/trame pause <workflow> <reason>"


async def command(bot: Bot, text: str, channel: str, **fields: str) -> Answer:
    request = bot.slack.command(
        text,
        user=f.MEMBER,
        channel=channel,
        response_url=bot.fake.response_url(bot.fake_url, f"cmd-{f.MEMBER}"),
        **fields,
    )
    return await bot.send(request)


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("pause payload-export client asked to wait", {}),
        ("pause invoice-sync payload incident", {}),
        ("pause invoice-sync client asked to wait", {"channel_name": "payload-approvals"}),
        ("pause invoice-sync client asked to wait", {"user_name": "payload"}),
        ("pause invoice-sync client asked to wait", {"team_domain": "payload"}),
        ("pause invoice-sync client asked to wait", {"team_domain": '{"payload": 1}'}),
    ],
    ids=["text-key", "text-reason", "channel-name", "user-name", "team-domain", "json-domain"],
)
async def test_the_word_payload_in_any_field_still_pauses(
    bot: Bot, acme: str, text: str, fields: dict[str, str]
) -> None:
    await f.workflow(bot.deps, key="payload-export")
    key = text.split()[1]
    answer = await command(bot, text, acme, **fields)
    assert answer.status == 200, answer.body
    assert "paused" in answer.text.lower()
    paused = await workflows.get_workflow(bot.deps.ctx, "acme", key)
    assert paused.status is Status.PAUSED


# What Slack can put in a form field: any UTF-8 text (surrogates cannot be encoded).
field_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=200)
words = st.lists(
    st.sampled_from(["payload", "payload=", "{", "}", "command", "&", "=", "%", "+", "status"]),
    max_size=6,
).map(" ".join)


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    text=field_text | words,
    channel_name=field_text | words,
    user_name=field_text | words,
    team_domain=field_text | words,
)
async def test_any_command_text_and_field_values_reach_the_listener(
    bot: Bot, acme: str, text: str, channel_name: str, user_name: str, team_domain: str
) -> None:
    answer = await command(
        bot,
        text,
        acme,
        channel_name=channel_name,
        user_name=user_name,
        team_domain=team_domain,
    )
    # Our listener acks every /trame with a text for the user alone; Bolt's "unhandled
    # request" (404) or our edge's refusal (400) would mean it never reached the listener.
    assert answer.status == 200, answer.body
    assert answer.text.strip()


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        ("", None, {}),
        ('{"type": "event_callback"}', "application/json", {"type": "event_callback"}),
        ("payload=%7B%22type%22%3A%22block_actions%22%7D", None, {"type": "block_actions"}),
        ("command=%2Ftrame&text=payload", None, {"command": "/trame", "text": "payload"}),
        ("command=%2Ftrame&payload=x", None, {"command": "/trame", "payload": "x"}),
        ("ssl_check=1&token=t", None, {"ssl_check": "1", "token": "t"}),
        (
            "text=a%26payload%3D1&command=%2Ftrame",
            None,
            {"text": "a&payload=1", "command": "/trame"},
        ),
    ],
)
def test_bodies_are_read_by_their_fields(
    raw: str, content_type: str | None, expected: dict[str, Any]
) -> None:
    assert read_body(raw, content_type) == expected


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        ("{not json", None),
        ("[1, 2]", "application/json"),
        ("payload=%5B%5D", None),
        ("payload=not-json", None),
    ],
)
def test_bodies_of_no_shape_slack_sends_are_refused(raw: str, content_type: str | None) -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        read_body(raw, content_type)


async def test_a_malformed_body_is_a_bad_request_not_a_crash(bot: Bot, acme: str) -> None:
    body = b"payload=not-json"
    async with bot.session.post(bot.url, data=body, headers=bot.slack.sign(body)) as response:
        assert response.status == 400
        assert json.loads(await response.text()) == {"error": "invalid request"}

"""A person's DM channel is opened once per Slack team and remembered; one Slack no longer knows
is opened again, and the message still arrives."""

from __future__ import annotations

from typing import Any

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.sandbox.fake_slack import RunningFake
from trame_bot.services.outbox import Kind
from trame_bot.slack.client import build_client
from trame_bot.slack.senders import DmChannels, SlackSenders
from trame_bot.slack.team_clients import ConfiguredToken
from trame_bot.store.models import OutboxMessage


def outcome(state: str) -> OutboxMessage:
    data: dict[str, Any] = {"name": "Invoice sync", "state": state, "run_id": "r1"}
    payload = {"user": f.MEMBER, "event": f"run.{state}", "data": data}
    return OutboxMessage(kind=Kind.SLACK_DM.value, payload=payload, workspace_id=None)


async def test_a_dm_channel_is_opened_once_then_again_when_slack_forgot_it(
    deps: Deps, slack_api: RunningFake
) -> None:
    client = build_client(deps.settings.slack_bot_token or "", slack_api.api_url)
    senders = SlackSenders(deps.ctx, ConfiguredToken(deps.ctx, client))
    send = senders.registry()[Kind.SLACK_DM.value]
    fake = slack_api.fake

    await send(outcome("approved"))
    await send(outcome("declined"))
    assert len(fake.calls_to("conversations.open")) == 1
    (channel,) = {str(c.args["channel"]) for c in fake.calls_to("chat.postMessage")}

    senders.dm_channels.remember((None, f.MEMBER), "not-a-channel")  # Slack forgot it
    await send(outcome("expired"))
    assert len(fake.calls_to("conversations.open")) == 2
    posts = fake.calls_to("chat.postMessage")
    assert [(str(c.args["channel"]), c.ok) for c in posts] == [
        (channel, True),
        (channel, True),
        ("not-a-channel", False),
        (channel, True),
    ]
    assert [m.text.split(".")[0] for m in fake.messages(channel)] == [
        "✅ Your run of *Invoice sync* was approved",
        "❌ Your run of *Invoice sync* was declined",
        "⌛ Your run of *Invoice sync* expired before anyone decided",
    ]


def test_dm_channels_keep_the_most_recently_used_up_to_their_limit() -> None:
    channels = DmChannels(limit=2)
    channels.remember(("T1", "U1"), "D1")
    channels.remember(("T1", "U2"), "D2")
    assert channels.get(("T1", "U1")) == "D1"  # now the most recently used
    channels.remember(("T2", "U1"), "D3")
    assert channels.get(("T1", "U2")) is None
    assert (channels.get(("T1", "U1")), channels.get(("T2", "U1"))) == ("D1", "D3")

"""The fake Slack with several teams, through slack_sdk's real client over loopback: a token
reaches only its own team, dead tokens are refused as Slack refuses them, shared channels admit
both teams, and every call records whose token made it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from trame_bot.sandbox.fake_slack import BOT_USER_ID, TEAM_ID, FakeSlack, RunningFake, serve

TOKEN = "xoxb-fake-token"
APP_TOKEN = "xapp-1-A0APP-1-fake"
CLIENT = "T0CLIENT"
HOME_CHANNEL = "C0HOME"
CLIENT_CHANNEL = "C0CLIENT"
SHARED = "C0SHARED"
MODAL = {
    "type": "modal",
    "title": {"type": "plain_text", "text": "Reject"},
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Why?"}}],
}


@pytest.fixture
def fake() -> FakeSlack:
    fake = FakeSlack(TOKEN, app_token=APP_TOKEN)
    fake.add_team(CLIENT, "Client Co", domain="client")
    fake.add_channel(CLIENT_CHANNEL, team=CLIENT)
    fake.add_channel(HOME_CHANNEL)
    fake.add_user("U0CAROL", team=CLIENT, real_name="Carol")
    fake.add_user("U0ALICE", real_name="Alice")
    return fake


@pytest.fixture
async def running(fake: FakeSlack) -> AsyncIterator[RunningFake]:
    async with await serve(fake) as running:
        yield running


@pytest.fixture
def home(running: RunningFake) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=running.api_url)


@pytest.fixture
def client_bot(fake: FakeSlack, running: RunningFake) -> AsyncWebClient:
    return AsyncWebClient(token=fake.install(CLIENT), base_url=running.api_url)


async def refusal(call: Any) -> str:
    with pytest.raises(SlackApiError) as caught:
        await call
    assert caught.value.response.status_code == 200
    return str(caught.value.response["error"])


# -- who a token is


async def test_auth_test_answers_for_the_tokens_own_team(
    fake: FakeSlack, home: AsyncWebClient, client_bot: AsyncWebClient
) -> None:
    mine = await home.auth_test()
    theirs = await client_bot.auth_test()
    assert (mine["team_id"], mine["user_id"], mine["bot_id"]) == (TEAM_ID, BOT_USER_ID, "B0BOT")
    team = fake.teams[CLIENT]
    assert (theirs["team_id"], theirs["team"], theirs["url"]) == (
        CLIENT,
        "Client Co",
        "https://client.slack.com/",
    )
    assert (theirs["user_id"], theirs["bot_id"]) == (team.bot_user_id, team.bot_id)
    assert team.bot_user_id != BOT_USER_ID


async def test_every_call_records_whose_token_made_it(
    fake: FakeSlack, running: RunningFake, home: AsyncWebClient, client_bot: AsyncWebClient
) -> None:
    await home.chat_postMessage(channel=HOME_CHANNEL, text="home")
    await client_bot.chat_postMessage(channel=CLIENT_CHANNEL, text="client")
    await refusal(client_bot.chat_postMessage(channel=HOME_CHANNEL, text="astray"))
    await refusal(AsyncWebClient(token="xoxb-nobody", base_url=running.api_url).auth_test())
    assert [(c.team_id, c.ok) for c in fake.calls] == [
        (TEAM_ID, True),
        (CLIENT, True),
        (CLIENT, False),
        (None, False),
    ]
    assert [c.token_label for c in fake.calls] == [
        f"{TEAM_ID} bot #1",
        f"{CLIENT} bot #1",
        f"{CLIENT} bot #1",
        None,
    ]
    assert fake.token_label(TOKEN) == f"{TEAM_ID} bot #1"
    message = fake.messages(CLIENT_CHANNEL)[0]
    assert (message.team, message.user) == (CLIENT, fake.teams[CLIENT].bot_user_id)
    assert message.to_payload()["bot_id"] == fake.teams[CLIENT].bot_id


# -- another team's channels and users


async def test_another_teams_channel_is_not_found(
    home: AsyncWebClient, client_bot: AsyncWebClient
) -> None:
    assert await refusal(home.chat_postMessage(channel=CLIENT_CHANNEL, text="x")) == (
        "channel_not_found"
    )
    assert await refusal(client_bot.chat_postMessage(channel=HOME_CHANNEL, text="x")) == (
        "channel_not_found"
    )
    # The first team is lenient about unregistered channels; other teams are not.
    assert (await home.chat_postMessage(channel="C0ANYWHERE", text="x"))["ok"]
    assert await refusal(client_bot.chat_postMessage(channel="C0ANYWHERE", text="x")) == (
        "channel_not_found"
    )
    assert await refusal(
        home.chat_postEphemeral(channel=CLIENT_CHANNEL, user="U0CAROL", text="x")
    ) == ("channel_not_found")


async def test_another_teams_user_is_not_found(
    home: AsyncWebClient, client_bot: AsyncWebClient
) -> None:
    assert await refusal(home.users_info(user="U0CAROL")) == "user_not_found"
    assert await refusal(client_bot.users_info(user="U0ALICE")) == "user_not_found"
    assert await refusal(home.conversations_open(users="U0CAROL")) == "user_not_found"
    assert await refusal(
        client_bot.chat_postEphemeral(channel=CLIENT_CHANNEL, user="U0ALICE", text="x")
    ) == ("user_not_found")
    assert await refusal(home.chat_postMessage(channel="U0CAROL", text="dm")) == (
        "channel_not_found"
    )
    assert await refusal(home.views_publish(user_id="U0CAROL", view={"type": "home"})) == (
        "user_not_found"
    )
    carol = await client_bot.users_info(user="U0CAROL")
    assert carol["user"]["team_id"] == CLIENT
    dm = await client_bot.conversations_open(users="U0CAROL")
    assert (await client_bot.chat_postMessage(channel=dm["channel"]["id"], text="hi"))["ok"]


async def test_another_teams_views_and_files_are_not_found(
    home: AsyncWebClient, client_bot: AsyncWebClient
) -> None:
    opened = await client_bot.views_open(trigger_id="1.2.3", view=MODAL)
    assert await refusal(home.views_update(view_id=opened["view"]["id"], view=MODAL)) == (
        "not_found"
    )
    assert opened["view"]["team_id"] == CLIENT
    upload = await client_bot.files_upload_v2(
        content=b"plan", filename="plan.txt", channel=CLIENT_CHANNEL
    )
    file_id = upload["files"][0]["id"]
    assert await refusal(
        home.files_completeUploadExternal(files=[{"id": file_id}], channel_id=HOME_CHANNEL)
    ) == ("file_not_found")


async def test_a_bot_cannot_update_another_teams_message(
    fake: FakeSlack, home: AsyncWebClient, client_bot: AsyncWebClient
) -> None:
    fake.share_channel(SHARED, TEAM_ID, CLIENT)
    posted = await home.chat_postMessage(channel=SHARED, text="card")
    assert await refusal(client_bot.chat_update(channel=SHARED, ts=posted["ts"], text="x")) == (
        "cant_update_message"
    )
    other = await home.chat_postMessage(channel=HOME_CHANNEL, text="card")
    assert await refusal(
        client_bot.chat_update(channel=HOME_CHANNEL, ts=other["ts"], text="x")
    ) == ("channel_not_found")


# -- Slack Connect


async def test_a_shared_channel_takes_either_teams_token(
    fake: FakeSlack, home: AsyncWebClient, client_bot: AsyncWebClient
) -> None:
    fake.share_channel(SHARED, TEAM_ID, CLIENT)
    await home.chat_postMessage(channel=SHARED, text="from home")
    await client_bot.chat_postMessage(channel=SHARED, text="from client")
    assert [(m.text, m.team) for m in fake.messages(SHARED)] == [
        ("from home", TEAM_ID),
        ("from client", CLIENT),
    ]
    assert fake.directory.is_shared(SHARED)
    # A partner's user is visible through the shared channel, and reachable there.
    assert (await home.users_info(user="U0CAROL"))["user"]["team_id"] == CLIENT
    await home.chat_postEphemeral(channel=SHARED, user="U0CAROL", text="only you")
    assert fake.ephemerals[-1].team == TEAM_ID
    assert fake.team_of_channel(SHARED) == TEAM_ID
    assert fake.directory.channels_of(CLIENT) == [CLIENT_CHANNEL, SHARED]


# -- dead tokens


async def test_unknown_revoked_inactive_and_wrong_type_tokens(
    fake: FakeSlack, running: RunningFake, client_bot: AsyncWebClient
) -> None:
    def with_token(token: str) -> AsyncWebClient:
        return AsyncWebClient(token=token, base_url=running.api_url)

    assert await refusal(with_token("garbage").auth_test()) == "invalid_auth"
    assert await refusal(with_token(APP_TOKEN).chat_postMessage(channel="C1", text="x")) == (
        "not_allowed_token_type"
    )
    revoked = fake.install(CLIENT)
    assert (await with_token(revoked).auth_revoke())["revoked"] is True
    assert await refusal(with_token(revoked).auth_test()) == "token_revoked"
    assert (await client_bot.auth_test())["ok"]  # only that token was revoked
    fake.deactivate_team(CLIENT)
    assert await refusal(client_bot.auth_test()) == "account_inactive"
    assert (await with_token(TOKEN).auth_test())["ok"]


async def test_expire_tokens_makes_a_teams_tokens_expired(
    fake: FakeSlack, home: AsyncWebClient, client_bot: AsyncWebClient
) -> None:
    fake.expire_tokens(CLIENT)
    assert await refusal(client_bot.auth_test()) == "token_expired"
    assert (await home.auth_test())["ok"]


async def test_uninstall_revokes_only_that_team(
    fake: FakeSlack, home: AsyncWebClient, client_bot: AsyncWebClient
) -> None:
    fake.uninstall(CLIENT)
    assert await refusal(client_bot.chat_postMessage(channel=CLIENT_CHANNEL, text="x")) == (
        "token_revoked"
    )
    assert (await home.chat_postMessage(channel=HOME_CHANNEL, text="x"))["ok"]
    assert fake.teams[CLIENT].installer is None


# -- arranging mistakes are test errors, not Slack answers


def test_arranging_refuses_malformed_ids_and_conflicts(fake: FakeSlack) -> None:
    with pytest.raises(ValueError, match="team id"):
        fake.add_team("client", "Client")
    with pytest.raises(ValueError, match="channel id"):
        fake.add_channel("general", team=CLIENT)
    with pytest.raises(ValueError, match="belongs to"):
        fake.add_channel(CLIENT_CHANNEL, team=TEAM_ID)
    with pytest.raises(ValueError, match="unknown team"):
        fake.add_user("U0ZED", team="T0NOBODY")
    renamed = fake.add_team(CLIENT, "Client Corp")
    assert (renamed.name, renamed.domain) == ("Client Corp", "client")

"""Distributed mode through the real server's outbox worker and the team-aware fake Slack: every
card, update, thread reply, DM and channel post goes with its own team's token; a team that is
gone (or whose token expired) keeps its messages held (never failed) while the other team's
flow; a reinstall sends each held message once, with the new token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from tests import factories as f
from tests.harness import Bot, eventually
from trame_bot.bootstrap import Deps, build_web_app
from trame_bot.clock import FakeClock
from trame_bot.config import Settings
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, Verdict
from trame_bot.sandbox.fake_slack import Call, FakeSlack, RunningFake, serve
from trame_bot.services import decisions, digests, installations, workspaces
from trame_bot.services.outbox import SLACK_KINDS, held_messages
from trame_bot.slack.team_clients import TOKEN_RETRY
from trame_bot.store import outbox as outbox_store
from trame_bot.store.database import Database
from trame_bot.store.models import AuditEvent, OutboxMessage, SlackInstallation
from trame_bot.vault import new_key

KEY = new_key()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return f.distributed_settings(database_url, KEY, slack_timeout=2)


@pytest.fixture
async def slack_api(settings: Settings) -> AsyncIterator[RunningFake]:
    """Slack with no team installed yet: each test installs the teams it needs."""
    running = await serve(
        FakeSlack("", client_id=settings.slack_client_id, client_secret=f.CLIENT_SECRET)
    )
    yield running
    await running.close()


@dataclass
class Client:
    """A client's trame workspace, bound to its own Slack team."""

    key: str
    team: str
    channels: tuple[str, str]
    admin: str
    member: str
    token: str = ""


async def client(bot: Bot, key: str, team: str) -> Client:
    """The workspace, its team in Slack (users, channels) and the app installed there."""
    fake, suffix = bot.fake, team[1:]
    fake.add_team(team, key.title())
    owner, admin, member = (f"U{suffix}{role}" for role in ("OWN", "ADM", "MEM"))
    for user in (owner, admin, member):
        fake.add_user(user, team=team)
    workspace = await f.governed_workspace(
        bot.deps,
        key,
        members=((owner, Role.OWNER), (admin, Role.ADMIN), (member, Role.MEMBER)),
    )
    assert workspace.ops_channel is not None
    channels = (workspace.approvals_channel, workspace.ops_channel)
    for channel in channels:
        fake.add_channel(channel, team=team)
    await f.workflow(bot.deps, key)
    found = Client(key, team, channels, admin, member)
    await install(bot, found)
    return found


async def install(bot: Bot, found: Client) -> None:
    """Slack issues a new token and the installation stores it, connected (as an install or a
    reinstall does)."""
    found.token = bot.fake.install(found.team)
    await f.slack_installation(
        bot.deps, found.key, team=found.team, token=found.token, name=found.key.title()
    )


async def every_kind(bot: Bot, found: Client) -> str:
    """A card, its update, a thread reply, a DM to the requester and a digest post."""
    run = await f.request(bot.deps, found.key, by=found.member)
    await decisions.decide(bot.deps.ctx, run.id, Actor.slack(found.admin), Verdict.APPROVE)
    await digests.send_digest_now(bot.deps.ctx, found.key, Actor.slack(found.admin))
    return run.id


async def sent(bot: Bot) -> None:
    """Everything not held has been delivered."""

    async def done() -> bool:
        async with bot.deps.db.reading() as session:
            count, _ = await outbox_store.backlog(session, installed_only=SLACK_KINDS)
        return count == 0

    await eventually(done)


def calls_of(fake: FakeSlack, team: str) -> list[Call]:
    return [c for c in fake.calls if c.team_id == team]


def channel_posts(fake: FakeSlack, channel: str) -> list[Call]:
    return [c for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == channel]


async def outbox_rows(bot: Bot, key: str) -> list[OutboxMessage]:
    workspace = await workspaces.get_workspace(bot.deps.ctx, key)
    async with bot.deps.db.reading() as session:
        found = await session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.workspace_id == workspace.id)
            .order_by(OutboxMessage.id)
        )
        return list(found.scalars())


async def audited(bot: Bot, action: str) -> list[AuditEvent]:
    async with bot.deps.db.reading() as session:
        found = await session.execute(select(AuditEvent).where(AuditEvent.action == action))
        return list(found.scalars())


async def test_each_message_goes_with_its_own_team_s_token(bot: Bot) -> None:
    acme = await client(bot, "acme", "T0ACME")
    globex = await client(bot, "globex", "T0GLOBEX")
    for found in (acme, globex):
        await every_kind(bot, found)
    await sent(bot)

    assert [(c.method, c.error) for c in bot.fake.calls if not c.ok] == []
    for found in (acme, globex):
        calls = calls_of(bot.fake, found.team)
        assert {c.method for c in calls} == {
            "chat.postMessage",
            "chat.update",
            "conversations.open",
        }
        assert {c.token_label for c in calls} == {bot.fake.token_label(found.token)}
        targets = {str(c.args["channel"]) for c in calls if "channel" in c.args}
        dm = next(c for c in calls if c.method == "conversations.open")
        assert dm.args["users"] == found.member
        assert targets - set(found.channels) <= {f"D{found.member[1:]}"}, targets
    assert len(bot.fake.calls) == 2 * 6, "card, update, reply, DM (open + post), digest"


async def test_a_team_that_is_gone_is_held_while_the_other_flows_then_sent_once_on_reinstall(
    bot: Bot,
) -> None:
    acme = await client(bot, "acme", "T0ACME")
    globex = await client(bot, "globex", "T0GLOBEX")
    bot.fake.uninstall(acme.team)  # Slack revokes acme's token...
    assert await installations.disconnect(bot.deps.ctx, acme.team, "app_uninstalled")
    for found in (acme, globex):  # ...and the app hears of it before anything is sent
        await every_kind(bot, found)
    await sent(bot)

    assert calls_of(bot.fake, acme.team) == []
    assert len(calls_of(bot.fake, globex.team)) == 6
    held = [m for m in await outbox_rows(bot, "acme") if m.kind in SLACK_KINDS]
    assert [(m.state, m.attempts) for m in held] == [("pending", 0)] * 5, "4 kinds, 5 rows"
    assert await held_messages(bot.deps.ctx, "acme") == 5

    base = str(bot.server.make_url(""))
    async with bot.session.get(base + "/readyz") as response:
        ready = await response.json()
        assert response.status == 200, ready
    (line,) = ready["slack_disconnected"]
    assert re.fullmatch(r"acme \(app_uninstalled since \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", line)
    async with bot.session.get(base + "/metrics") as response:
        metrics = await response.text()
    assert "trame_slack_disconnected_workspaces 1.0" in metrics
    assert "trame_outbox_held 5.0" in metrics

    await install(bot, acme)  # the reinstall wakes the worker on commit
    await sent(bot)
    calls = calls_of(bot.fake, acme.team)
    assert len(calls) == 6
    assert all(c.ok for c in calls)
    assert {c.token_label for c in calls} == {bot.fake.token_label(acme.token)} == {"T0ACME bot #2"}
    assert len(channel_posts(bot.fake, acme.channels[0])) == 2, "one card, one thread reply"
    assert await held_messages(bot.deps.ctx, "acme") == 0


async def test_a_revoked_token_disconnects_the_team_once_and_holds_its_messages(
    bot: Bot,
) -> None:
    acme = await client(bot, "acme", "T0ACME")
    globex = await client(bot, "globex", "T0GLOBEX")
    bot.fake.uninstall(acme.team)  # the events never reach the app: the sends find out
    for _ in range(3):
        await f.request(bot.deps, "acme", by=acme.member)
    await every_kind(bot, globex)

    async def disconnected() -> bool:
        async with bot.deps.db.reading() as session:
            row = await session.scalar(
                select(SlackInstallation).where(SlackInstallation.team_id == acme.team)
            )
            return row is not None and row.disconnected_at is not None

    await eventually(disconnected)
    await sent(bot)
    refused = calls_of(bot.fake, acme.team)
    assert refused
    assert {c.error for c in refused} == {"token_revoked"}
    (event,) = await audited(bot, "slack.disconnected")
    assert "token_revoked" in event.summary
    cards = await outbox_rows(bot, "acme")
    assert [(m.state, m.attempts) for m in cards] == [("pending", 0)] * 3
    assert all((m.last_error or "").startswith("held: ") for m in cards if m.last_error)
    assert await audited(bot, "delivery.failed") == []
    assert len(calls_of(bot.fake, globex.team)) == 6, "the other team's messages flow"

    await install(bot, acme)
    await sent(bot)
    posts = [c for c in channel_posts(bot.fake, acme.channels[0]) if c.ok]
    assert len(posts) == 3, "each held card once"
    assert {c.token_label for c in posts} == {bot.fake.token_label(acme.token)}
    assert len(await audited(bot, "slack.disconnected")) == 1


async def test_two_servers_send_each_held_message_once_after_a_reinstall(
    bot: Bot, settings: Settings
) -> None:
    """Two replicas (two database handles, two outbox workers) share the installations."""
    acme = await client(bot, "acme", "T0ACME")
    assert await installations.disconnect(bot.deps.ctx, acme.team, "app_uninstalled")
    for _ in range(20):
        await f.request(bot.deps, "acme", by=acme.member)
    second_db = Database(bot.deps.db.url)
    second = TestServer(
        build_web_app(Deps(bot.deps.settings, second_db, bot.deps.clock)),
        host="127.0.0.1",
    )
    await second.start_server()
    try:
        await install(bot, acme)
        await sent(bot)
    finally:
        await second.close()
        await second_db.dispose()
    posts = [c for c in channel_posts(bot.fake, acme.channels[0]) if c.ok]
    assert len(posts) == 20
    assert {c.token_label for c in posts} == {bot.fake.token_label(acme.token)}


async def test_the_fake_refuses_a_token_in_another_team_s_channel(bot: Bot) -> None:
    """The check above means something: a card sent with the wrong team's token is refused."""
    acme = await client(bot, "acme", "T0ACME")
    globex = await client(bot, "globex", "T0GLOBEX")
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            bot.fake_url.rstrip("/") + "/api/chat.postMessage",
            json={"channel": acme.channels[0], "text": "hello"},
            headers={"Authorization": f"Bearer {globex.token}"},
        ) as response,
    ):
        answer = await response.json()
    assert answer == {"ok": False, "error": "channel_not_found"}


async def test_an_expired_token_waits_for_its_renewal_without_counting_attempts(
    bot: Bot, clock: FakeClock
) -> None:
    acme = await client(bot, "acme", "T0ACME")
    bot.fake.expire_tokens(acme.team)
    await f.request(bot.deps, "acme", by=acme.member)

    async def held() -> bool:
        (row,) = await outbox_rows(bot, "acme")
        return row.last_error == "held: Slack token expired"

    await eventually(held)
    (row,) = await outbox_rows(bot, "acme")
    assert (row.state, row.attempts) == ("pending", 0)
    assert await audited(bot, "slack.disconnected") == []

    await install(bot, acme)  # as Bolt's token rotation stores a renewed token
    clock.advance(timedelta(seconds=TOKEN_RETRY + 1))
    await sent(bot)
    posts = [c for c in channel_posts(bot.fake, acme.channels[0]) if c.ok]
    assert [c.token_label for c in posts] == [bot.fake.token_label(acme.token)]


async def test_a_rotating_token_near_expiry_is_renewed_before_the_send(
    bot: Bot, clock: FakeClock
) -> None:
    """No request from Slack renews it: the outbox does, through SLACK_API_URL, and stores the
    new pair sealed."""
    bot.fake.configure_app(token_rotation=True, token_lifetime=43_200)  # renewals: 12 hours
    acme = await client(bot, "acme", "T0ACME")
    refresh = bot.fake.directory.issue(acme.team, "refresh").value
    await f.slack_installation(
        bot.deps,
        "acme",
        team=acme.team,
        token=acme.token,
        refresh_token=refresh,
        expires_at=clock.now() + timedelta(minutes=30),
    )
    await f.request(bot.deps, "acme", by=acme.member)
    await sent(bot)

    renewals = [
        c
        for c in bot.fake.calls_to("oauth.v2.access")
        if c.args.get("grant_type") == "refresh_token"
    ]
    assert [c.ok for c in renewals] == [True]
    (post,) = channel_posts(bot.fake, acme.channels[0])
    assert post.ok
    assert post.token_label == "T0ACME bot #2", "the renewed token, not the one about to expire"
    found = await installations.find_bot(bot.deps.ctx, acme.team)
    assert found is not None
    assert found.bot_token != acme.token
    assert found.bot_refresh_token not in (None, refresh)

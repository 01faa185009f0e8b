"""Distributed mode's install over real HTTP: the operator's link, the state cookie, the fake
Slack's consent page and `oauth.v2.access`, and the callback that binds the workspace. Every
refusal is a page that says why, with nothing stored; tokens never reach the database in clear.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, unused_port
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, text
from yarl import URL

from tests import factories as f
from tests.harness import Bot, eventually
from trame_bot.bootstrap import Deps, build_web_app
from trame_bot.clock import FakeClock
from trame_bot.config import Distributed, Settings
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import RunState
from trame_bot.logs import SecretFilter
from trame_bot.sandbox.fake_slack import FakeSlack, RunningFake, serve
from trame_bot.sandbox.slack_requests import SignedRequest, SlackRequests
from trame_bot.services import install_links, installations, workspaces
from trame_bot.slack.ids import Action
from trame_bot.slack.installation_store import TokenRefresher
from trame_bot.slack.oauth import AUTHORIZED_TOKENS, RecentResults, bot_scopes, build_oauth
from trame_bot.store.models import AuditEvent, Base, SlackInstallation
from trame_bot.vault import new_key

CLIENT_ID, CLIENT_SECRET = "1111.2222", "client-secret-SECRET-9"
TEAM, ADMIN = "T0CLIENT", "U0CLIADMIN"
COOKIE = "slack-app-oauth-state"
# slack-sdk 3.48 sends the client credentials with aiohttp's BasicAuth, deprecated in aiohttp 3.14.
pytestmark = pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")


@pytest.fixture
async def fake() -> AsyncIterator[RunningFake]:
    running = await serve(
        FakeSlack("xoxb-unused-SECRET", client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    )
    running.fake.add_team(TEAM, "Client Co")
    running.fake.add_user(ADMIN, team=TEAM, real_name="Client Admin")
    yield running
    await running.close()


@pytest.fixture
def port() -> int:
    return unused_port()


@pytest.fixture
def settings(database_url: str, fake: RunningFake, port: int) -> Settings:
    return Settings(
        database_url=database_url,
        slack_signing_secret="signing-secret-SECRET-5678",
        slack_api_url=fake.api_url,
        slack_timeout=2,
        slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET,
        slack_authorize_url=fake.authorize_url,
        encryption_keys=(new_key(),),
        public_url=f"http://127.0.0.1:{port}",
    )


@dataclass
class Install:
    deps: Deps
    fake: FakeSlack
    base: str
    browser: aiohttp.ClientSession

    async def link(self, ttl: timedelta = timedelta(days=7)) -> str:
        return await install_links.create_install_link(
            self.deps.ctx, "acme", Actor.cli(), ttl, self.deps.settings.public_url
        )

    async def start(self, link: str) -> aiohttp.ClientResponse:
        async with self.browser.get(link, allow_redirects=False) as response:
            await response.read()
            return response

    async def consent(self, authorize_url: str, action: str = "allow") -> str:
        """The Slack admin's answer on the fake's consent page; returns our callback URL."""
        query = parse_qs(urlsplit(authorize_url).query)
        form = {k: v[0] for k, v in query.items() if k in ("client_id", "scope", "state")}
        form |= {"redirect_uri": query["redirect_uri"][0], "team": TEAM, "action": action}
        async with aiohttp.ClientSession() as slack_page:  # Slack's own origin: no our cookies
            async with slack_page.get(authorize_url) as page:
                assert page.status == 200, await page.text()
            async with slack_page.post(
                authorize_url.split("?")[0], data=form, allow_redirects=False
            ) as answer:
                assert answer.status == 302, await answer.text()
                return answer.headers["Location"]

    async def callback(
        self, url: str, session: aiohttp.ClientSession | None = None
    ) -> tuple[int, str]:
        async with (session or self.browser).get(url, allow_redirects=False) as response:
            return response.status, await response.text()

    async def through(self, link: str) -> tuple[int, str]:
        started = await self.start(link)
        assert started.status == 302
        return await self.callback(await self.consent(started.headers["Location"]))


@pytest.fixture
async def flow(deps: Deps, fake: RunningFake, port: int) -> AsyncIterator[Install]:
    await f.workspace(deps)
    server = TestServer(build_web_app(deps), host="127.0.0.1", port=port)
    await server.start_server()
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    try:
        yield Install(deps, fake.fake, str(server.make_url("")), browser)
    finally:
        await browser.close()
        await server.close()


async def database_text(deps: Deps) -> bytes:
    """Everything the database holds, as bytes: the SQLite files themselves, or every row of
    every PostgreSQL table as text (what a dump would show)."""
    if deps.db.is_sqlite:
        path = Path(deps.db.url.split("///", 1)[1])
        files = [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-journal")]
        return b"".join(file.read_bytes() for file in files if file.exists())
    rows = []
    async with deps.db.reading() as session:
        for table in Base.metadata.sorted_tables:
            result = await session.execute(text(f"SELECT CAST(t AS text) FROM {table.name} t"))
            rows += [str(r[0]) for r in result]
    return "\n".join(rows).encode()


def issued(fake: FakeSlack) -> list[str]:
    return [t.value for kind in ("bot", "refresh") for t in fake.directory.tokens_of(TEAM, kind)]


async def nothing_stored(flow: Install) -> None:
    async with flow.deps.db.reading() as session:
        assert (await session.execute(select(SlackInstallation))).first() is None
        installed = await session.execute(
            select(AuditEvent).where(AuditEvent.action == "slack.installed")
        )
        assert installed.first() is None
    assert (await workspaces.get_workspace(flow.deps.ctx, "acme")).slack_team_id is None


async def test_an_install_link_walks_slack_oauth_and_binds_the_workspace(flow: Install) -> None:
    started = await flow.start(await flow.link())
    assert started.status == 302
    authorize = urlsplit(started.headers["Location"])
    assert started.headers["Location"].startswith(flow.deps.settings.slack_authorize_url + "?")
    query = parse_qs(authorize.query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["scope"] == [",".join(bot_scopes())]
    assert query["redirect_uri"] == [f"{flow.deps.settings.public_url}/slack/oauth_redirect"]
    cookie = flow.browser.cookie_jar.filter_cookies(URL(flow.base))[COOKIE]
    assert cookie.value == query["state"][0]

    status, page = await flow.callback(await flow.consent(started.headers["Location"]))
    assert status == 200, page
    assert "installed in the Slack team Client Co for acme" in page
    # The code was exchanged with the app's credentials at SLACK_API_URL (the fake).
    assert [c.ok for c in flow.fake.calls_to("oauth.v2.access")] == [True]

    connection = await installations.slack_connection(flow.deps.ctx, "acme")
    assert (connection.team_id, connection.state) == (TEAM, "connected")
    bot = await installations.find_bot(flow.deps.ctx, TEAM)
    assert bot is not None
    assert bot.bot_token in issued(flow.fake)
    assert bot.installed_by == ADMIN
    raw = await database_text(flow.deps)
    assert raw  # the read saw the database
    for token in issued(flow.fake):
        assert token.encode() not in raw
    async with flow.deps.db.reading() as session:
        (event,) = (
            await session.execute(select(AuditEvent).where(AuditEvent.action == "slack.installed"))
        ).scalars()
    assert event.actor == f"slack:{ADMIN}"
    assert f'"team_id":"{TEAM}"' in event.data
    assert '"team_name":"Client Co"' in event.data


async def test_refusals_are_pages_that_say_why_and_store_nothing(
    flow: Install, clock: FakeClock
) -> None:
    async def page(url: str, session: aiohttp.ClientSession | None = None) -> tuple[int, str]:
        return await flow.callback(url, session)

    # No grant, a forged one.
    status, body = await page(f"{flow.base}/slack/install")
    assert status == 403
    assert "needs the link" in body
    status, body = await page(f"{flow.base}/slack/install?grant=forged")
    assert status == 400
    assert "not one trame-bot made" in body

    # Cancelled on Slack's page.
    started = await flow.start(await flow.link())
    cancelled = await flow.consent(started.headers["Location"], action="cancel")
    status, body = await page(cancelled)
    assert status == 403
    assert "cancelled on Slack" in body

    # Finished in another browser (no state cookie): refused before the code is spent.
    started = await flow.start(await flow.link())
    callback = await flow.consent(started.headers["Location"])
    async with aiohttp.ClientSession() as other_browser:
        status, body = await page(callback, other_browser)
    assert status == 403
    assert "did not start in this browser" in body

    # A forged state, with a cookie to match it.
    flow.browser.cookie_jar.update_cookies({COOKIE: "forged"}, URL(flow.base))
    status, body = await page(f"{flow.base}/slack/oauth_redirect?state=forged&code=1.2.3")
    assert status == 400
    assert "unknown state" in body
    assert flow.fake.calls_to("oauth.v2.access") == []

    # An expired link.
    link = await flow.link(ttl=timedelta(hours=1))
    clock.advance(timedelta(hours=2))
    started = await flow.start(link)
    assert started.status == 403
    assert "Set-Cookie" not in started.headers
    status, body = await page(link)
    assert "expired on" in body
    await nothing_stored(flow)

    # A used link: the second install through it is refused.
    link = await flow.link()
    assert (await flow.through(link))[0] == 200
    status, body = await page(link)
    assert status == 403
    assert "already used" in body


def bot_for(flow: Install, team: str) -> Bot:
    """Signed Slack requests from `team`, to the running server."""
    return Bot(
        deps=flow.deps,
        url=f"{flow.base}/slack/events",
        session=flow.browser,
        slack=SlackRequests(flow.deps.settings.slack_signing_secret or "", team_id=team),
        fake=flow.fake,
        fake_url=flow.deps.settings.slack_api_url.removesuffix("api/"),
        server=None,  # type: ignore[arg-type]
    )


async def test_a_token_near_expiry_is_refreshed_at_slack_api_url_and_stored_sealed(
    flow: Install,
) -> None:
    # Slack's rotated tokens live 12 h; ten minutes left is inside Bolt's two-hour margin.
    flow.fake.configure_app(token_rotation=True, token_lifetime=600)
    assert (await flow.through(await flow.link()))[0] == 200
    first = await installations.find_bot(flow.deps.ctx, TEAM)
    assert first is not None
    assert first.bot_refresh_token is not None

    channel = (await workspaces.get_workspace(flow.deps.ctx, "acme")).approvals_channel
    answer = await bot_for(flow, TEAM).command("status", user=f.OWNER, channel=channel)
    assert answer.status == 200
    assert "Acme" in answer.text

    refreshes = [
        c
        for c in flow.fake.calls_to("oauth.v2.access")
        if c.args.get("grant_type") == "refresh_token"
    ]
    assert [c.ok for c in refreshes] == [True]
    renewed = await installations.find_bot(flow.deps.ctx, TEAM)
    assert renewed is not None
    assert renewed.bot_token != first.bot_token
    assert renewed.bot_refresh_token != first.bot_refresh_token
    assert renewed.bot_token in issued(flow.fake)
    raw = await database_text(flow.deps)
    for token in issued(flow.fake):
        assert token.encode() not in raw


async def test_uninstall_and_revoked_tokens_disconnect_once_and_a_new_link_reconnects(
    flow: Install,
) -> None:
    assert (await flow.through(await flow.link()))[0] == 200
    slack = bot_for(flow, TEAM)
    bodies = flow.fake.uninstall(TEAM)
    for _attempt in range(2):  # Slack retries an event it thinks was not received
        for body in bodies:
            answer = await slack.send(slack.slack.callback(body))
            assert answer.status == 200

    async def disconnected() -> bool:
        return not (await installations.slack_connection(flow.deps.ctx, "acme")).connected

    await eventually(disconnected)  # events are acked first, handled right after
    connection = await installations.slack_connection(flow.deps.ctx, "acme")
    assert connection.state == "disconnected"
    assert connection.reason in ("app_uninstalled", "tokens_revoked")  # whichever came first
    async with flow.deps.db.reading() as session:
        disconnected = await session.execute(
            select(AuditEvent).where(AuditEvent.action == "slack.disconnected")
        )
        assert len(disconnected.all()) == 1

    assert (await flow.through(await flow.link()))[0] == 200
    connection = await installations.slack_connection(flow.deps.ctx, "acme")
    assert connection.state == "connected"


async def test_a_channel_reaches_its_workspace_only_from_its_own_team(flow: Install) -> None:
    await f.connector(flow.deps, "acme", "crm")
    await f.connector(flow.deps, "acme", "sheets", toolkit="google-sheets")
    await f.workflow(flow.deps, reviewers=["U0PARTNER"])
    await f.slack_installation(flow.deps, "acme", team=TEAM, token=flow.fake.install(TEAM))
    await f.workspace(flow.deps, "globex")
    flow.fake.add_team("T0OTHER", "Other Co")
    await f.slack_installation(
        flow.deps, "globex", team="T0OTHER", token=flow.fake.install("T0OTHER")
    )
    acme = await workspaces.get_workspace(flow.deps.ctx, "acme")
    for channel in (acme.approvals_channel, acme.alerts_channel):
        flow.fake.add_channel(channel, team=TEAM)

    own = await bot_for(flow, TEAM).command("status", user=f.OWNER, channel=acme.approvals_channel)
    assert "Acme" in own.text
    # Another installed team naming acme's channel id finds no workspace there.
    other = await bot_for(flow, "T0OTHER").command(
        "status", user=f.OWNER, channel=acme.approvals_channel
    )
    assert "not connected to a trame-bot workspace" in other.text

    # A shared channel: a named reviewer of a partner organisation decides on acme's card;
    # the request's team (team.id) is acme's, the reviewer's own (user.team_id) is not.
    run = await f.request(flow.deps, by=f.MEMBER)
    # Another installed team's click naming acme's channel and run reaches no workspace.
    outsider = bot_for(flow, "T0OTHER")
    await outsider.click(Action.APPROVE, run.id, user=f.OWNER, channel=acme.approvals_channel)
    (told,) = await outsider.told(f.OWNER)
    assert "not connected to a workspace" in told
    assert await outsider.state_of(run.id) is RunState.PENDING
    slack = bot_for(flow, TEAM)
    payload = slack.slack.block_action_payload(
        user="U0PARTNER",
        action_id=Action.APPROVE.value,
        value=run.id,
        block_id="run_actions",
        channel=acme.approvals_channel,
        message_ts="1.000001",
    )
    payload["user"]["team_id"] = "T0PARTNER"
    body = urlencode({"payload": json.dumps(payload)}).encode()
    # An unbound team's click never reaches a listener: Bolt finds no installation.
    stranger = bot_for(flow, "T0NOBODY")
    stray = stranger.slack.block_action_payload(
        user=f.ADMIN,
        action_id=Action.APPROVE.value,
        value=run.id,
        block_id="run_actions",
        channel=acme.approvals_channel,
        message_ts="1.000001",
        response_url=flow.fake.response_url(stranger.fake_url, "stray"),
    )
    stray_body = urlencode({"payload": json.dumps(stray)}).encode()
    assert (
        await stranger.send(SignedRequest(stray_body, stranger.slack.sign(stray_body)))
    ).status == 200
    assert await stranger.state_of(run.id) is RunState.PENDING
    assert (await slack.send(SignedRequest(body, slack.slack.sign(body)))).status == 200
    assert await slack.settles(run.id) is RunState.APPROVED


async def test_the_outbox_refresher_renews_a_token_without_a_request_from_slack(
    flow: Install,
) -> None:
    flow.fake.configure_app(token_rotation=True, token_lifetime=600)
    assert (await flow.through(await flow.link()))[0] == 200
    first = await installations.find_bot(flow.deps.ctx, TEAM)
    assert first is not None
    mode = flow.deps.settings.slack_mode()
    assert isinstance(mode, Distributed)
    client = AsyncWebClient(base_url=flow.deps.settings.slack_api_url)
    refresher = TokenRefresher(flow.deps.ctx, mode, client)
    flow.fake.configure_app(token_lifetime=43_200)  # what the refresh hands out: 12 hours

    tokens = await asyncio.gather(*(refresher.bot_token(TEAM) for _ in range(3)))
    assert len(set(tokens)) == 1, "one refresh, shared by concurrent sends"
    refreshes = [
        c
        for c in flow.fake.calls_to("oauth.v2.access")
        if c.args.get("grant_type") == "refresh_token"
    ]
    assert len(refreshes) == 1
    assert tokens[0] != first.bot_token
    renewed = await installations.find_bot(flow.deps.ctx, TEAM)
    assert renewed is not None
    assert renewed.bot_token == tokens[0]
    answer = await AsyncWebClient(token=tokens[0], base_url=client.base_url).auth_test()
    assert answer["team_id"] == TEAM
    assert await refresher.bot_token("T0NEVER") is None


async def test_no_token_or_client_secret_reaches_a_log_line(
    flow: Install, caplog: pytest.LogCaptureFixture
) -> None:
    """Install, a token renewal, a command and an uninstall, with every logger at DEBUG: no
    record holds a token or the client secret as the configured handler writes it, and our
    own records hold none even before the handler's filter."""
    caplog.set_level(logging.DEBUG)
    for name in ("slack_sdk", "slack_bolt"):
        caplog.set_level(logging.DEBUG, logger=name)
    flow.fake.configure_app(token_rotation=True, token_lifetime=600)
    assert (await flow.through(await flow.link()))[0] == 200
    slack = bot_for(flow, TEAM)
    channel = (await workspaces.get_workspace(flow.deps.ctx, "acme")).approvals_channel
    assert (await slack.command("status", user=f.OWNER, channel=channel)).status == 200
    for body in flow.fake.uninstall(TEAM):
        assert (await slack.send(slack.slack.callback(body))).status == 200

    async def disconnected() -> bool:
        return not (await installations.slack_connection(flow.deps.ctx, "acme")).connected

    await eventually(disconnected)
    secrets = [*issued(flow.fake), CLIENT_SECRET]
    assert len(secrets) >= 5  # two bot tokens, two refresh tokens and the client secret
    written = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    handler_filter = SecretFilter(flow.deps.settings.secrets)
    records = caplog.get_records("call")
    assert records
    for record in records:
        raw = written.format(record)
        if record.name.startswith("trame_bot"):
            assert not [s for s in secrets if s in raw], raw
        handler_filter.filter(record)
        line = written.format(record)
        assert not [s for s in secrets if s in line], line


async def test_bolt_keeps_a_bounded_number_of_checked_tokens(
    deps: Deps, settings: Settings
) -> None:
    """Bolt's authorize keeps `auth.test` answers by token; rotating tokens are new keys every
    12 hours, so the oldest answers go once there are AUTHORIZED_TOKENS of them."""
    mode = settings.slack_mode()
    assert isinstance(mode, Distributed)
    _, authorize = build_oauth(deps.ctx, mode, AsyncWebClient())
    kept = authorize.authorize_result_cache
    assert isinstance(kept, RecentResults)
    assert kept.limit == AUTHORIZED_TOKENS
    for n in range(AUTHORIZED_TOKENS + 5):
        kept[f"xoxb-{n}"] = AuthorizeResult(enterprise_id=None, team_id=TEAM, bot_token=f"xoxb-{n}")
    assert len(kept) == AUTHORIZED_TOKENS
    assert "xoxb-4" not in kept
    assert kept["xoxb-5"].bot_token == "xoxb-5"
    assert f"xoxb-{AUTHORIZED_TOKENS + 4}" in kept

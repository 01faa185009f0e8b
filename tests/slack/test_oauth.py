"""Distributed mode's install over real HTTP: the operator's link, the state cookie, the fake
Slack's consent page and `oauth.v2.access`, and the callback that binds the workspace. Every
refusal is a page that says why, with nothing stored; tokens never reach the database in clear.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, unused_port
from sqlalchemy import select, text
from yarl import URL

from tests import factories as f
from trame_bot.bootstrap import Deps, build_web_app
from trame_bot.clock import FakeClock
from trame_bot.config import Settings
from trame_bot.domain.actors import Actor
from trame_bot.sandbox.fake_slack import FakeSlack, RunningFake, serve
from trame_bot.services import installations, workspaces
from trame_bot.slack.oauth import bot_scopes
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
        return await installations.create_install_link(
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

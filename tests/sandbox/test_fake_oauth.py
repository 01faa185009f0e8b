"""The fake's OAuth v2 over loopback HTTP: the consent page as a browser submits it, then
``oauth.v2.access`` through slack_sdk's real client (basic auth), token rotation and uninstall."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import AuthorizeUrlGenerator
from slack_sdk.oauth.installation_store import Bot
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from yarl import URL

from trame_bot.sandbox.fake_slack import TEAM_ID, FakeSlack, RunningFake, serve
from trame_bot.sandbox.slack_requests import SlackRequests

TOKEN = "xoxb-fake-token"
CLIENT_ID = "1111.2222"
CLIENT_SECRET = "client-secret"
REDIRECT = "http://127.0.0.1:9/slack/oauth_redirect"
SCOPES = ["commands", "chat:write", "users:read"]
CLIENT_TEAM = "T0CLIENT"

Json = dict[str, Any]

# slack-sdk 3.48 sends the client credentials with aiohttp's BasicAuth, deprecated in aiohttp 3.14.
pytestmark = pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class _Forms(HTMLParser):
    """The consent page's forms by team: their fields as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self.scopes: list[str] = []
        self.actions: dict[str, str] = {}
        self._team: str | None = None
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "section" and "data-team" in found:
            self._team = found["data-team"]
            self.forms[self._team] = {}
        elif tag == "form" and self._team is not None:
            self.actions[self._team] = found["action"]
        elif tag == "input" and self._team is not None:
            self.forms[self._team][found["name"]] = found.get("value", "")
        elif tag == "option" and self._team is not None:
            self.forms[self._team].setdefault("user", found["value"])
        self._in_code = tag == "code"

    def handle_data(self, data: str) -> None:
        if self._in_code and self._team is None:
            self.scopes.append(data)
        self._in_code = False


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeSlack:
    fake = FakeSlack(TOKEN, clock=clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    fake.add_team(CLIENT_TEAM, "Client Co", domain="client")
    fake.add_user("U0CAROL", team=CLIENT_TEAM, real_name="Carol")
    fake.add_user("U0DAVE", team=CLIENT_TEAM, real_name="Dave")
    return fake


@pytest.fixture
async def running(fake: FakeSlack) -> AsyncIterator[RunningFake]:
    async with await serve(fake) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def client(running: RunningFake) -> AsyncWebClient:
    return AsyncWebClient(base_url=running.api_url)


def authorize_url(running: RunningFake, state: str = "st@te/1", team: str | None = None) -> str:
    """The URL Bolt's install page links to, pointed at the fake (as SLACK_AUTHORIZE_URL)."""
    generator = AuthorizeUrlGenerator(
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT,
        scopes=SCOPES,
        authorization_url=running.authorize_url,
    )
    return generator.generate(state, team=team)


async def consent(browser: aiohttp.ClientSession, url: str) -> _Forms:
    async with browser.get(url) as page:
        assert page.status == 200
        assert page.content_type == "text/html"
        parser = _Forms()
        parser.feed(await page.text())
    return parser


async def submit(
    browser: aiohttp.ClientSession, running: RunningFake, form: dict[str, str], action: str
) -> URL:
    """Post a consent form; the URL Slack redirects the browser to."""
    async with browser.post(
        running.authorize_url, data={**form, "action": action}, allow_redirects=False
    ) as answer:
        assert answer.status == 302, await answer.text()
        return URL(answer.headers["Location"])


async def install(
    browser: aiohttp.ClientSession, running: RunningFake, team: str = CLIENT_TEAM, **fields: str
) -> str:
    """Walk the consent page for ``team``; the code the redirect carries."""
    forms = await consent(browser, authorize_url(running, team=team))
    redirect = await submit(browser, running, {**forms.forms[team], **fields}, "allow")
    return redirect.query["code"]


async def refusal(call: Any) -> str:
    with pytest.raises(SlackApiError) as caught:
        await call
    assert caught.value.response.status_code == 200
    return str(caught.value.response["error"])


# -- the consent page


async def test_consent_page_lists_scopes_and_a_form_per_team(
    fake: FakeSlack, running: RunningFake, browser: aiohttp.ClientSession
) -> None:
    fake.add_team("T0GONE", "Gone")
    fake.deactivate_team("T0GONE")
    page = await consent(browser, authorize_url(running))
    assert page.scopes == SCOPES
    assert set(page.forms) == {TEAM_ID, CLIENT_TEAM}
    form = page.forms[CLIENT_TEAM]
    assert (form["client_id"], form["state"], form["redirect_uri"]) == (
        CLIENT_ID,
        "st@te/1",
        REDIRECT,
    )
    assert form["user"] == "U0CAROL"


async def test_consent_page_for_one_team(
    running: RunningFake, browser: aiohttp.ClientSession
) -> None:
    page = await consent(browser, authorize_url(running, team=CLIENT_TEAM))
    assert set(page.forms) == {CLIENT_TEAM}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"client_id": "9999.0000"}, "client_id"),
        ({"redirect_uri": None}, "redirect_uri"),
        ({"redirect_uri": "ftp://elsewhere"}, "redirect_uri"),
        ({"scope": ""}, "scope"),
        ({"team": "T0NOBODY"}, "No workspace"),
    ],
)
async def test_consent_page_refuses_a_bad_request(
    running: RunningFake, browser: aiohttp.ClientSession, change: dict[str, str | None], reason: str
) -> None:
    url = URL(authorize_url(running))
    query = {k: v for k, v in {**url.query, **change}.items() if v is not None}
    async with browser.get(url.with_query(query)) as page:
        assert page.status == 400
        assert reason in await page.text()


async def test_a_configured_redirect_url_is_the_default_and_the_limit(
    fake: FakeSlack, running: RunningFake, browser: aiohttp.ClientSession
) -> None:
    fake.configure_app(redirect_uri="https://bot.example/slack/")
    url = URL(authorize_url(running))
    without = url.with_query({k: v for k, v in url.query.items() if k != "redirect_uri"})
    page = await consent(browser, str(without))
    redirect = await submit(browser, running, page.forms[CLIENT_TEAM], "allow")
    assert str(redirect.with_query(None)) == "https://bot.example/slack/"
    async with browser.get(url) as elsewhere:  # REDIRECT is not under the configured URL
        assert elsewhere.status == 400


async def test_allow_redirects_with_a_code_and_the_state_unchanged(
    running: RunningFake, browser: aiohttp.ClientSession
) -> None:
    # Bolt's states are URL-safe; any state, properly encoded, comes back the same.
    url = URL(authorize_url(running)).update_query(state="a b&c=d")
    page = await consent(browser, str(url))
    redirect = await submit(browser, running, page.forms[CLIENT_TEAM], "allow")
    assert str(redirect.with_query(None)) == REDIRECT
    assert redirect.query["state"] == "a b&c=d"
    assert redirect.query["code"]


async def test_cancel_redirects_with_access_denied(
    running: RunningFake, browser: aiohttp.ClientSession
) -> None:
    page = await consent(browser, authorize_url(running))
    redirect = await submit(browser, running, page.forms[CLIENT_TEAM], "cancel")
    assert dict(redirect.query) == {"error": "access_denied", "state": "st@te/1"}


async def test_an_installer_from_another_team_is_refused(
    running: RunningFake, browser: aiohttp.ClientSession
) -> None:
    page = await consent(browser, authorize_url(running))
    form = {**page.forms[CLIENT_TEAM], "user": "U0BOT", "action": "allow"}
    async with browser.post(running.authorize_url, data=form, allow_redirects=False) as answer:
        assert answer.status == 400


async def test_mounted_under_a_prefix_the_form_posts_back_there(
    fake: FakeSlack, browser: aiohttp.ClientSession
) -> None:
    outer = web.Application()
    outer.add_subapp("/sandbox/slack", fake.app())
    runner = web.AppRunner(outer, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/sandbox/slack/"
        url = URL(f"{base}oauth/v2/authorize").with_query(
            client_id=CLIENT_ID, scope="commands", state="s", redirect_uri=REDIRECT
        )
        page = await consent(browser, str(url))
        action = page.actions[CLIENT_TEAM]
        assert action == "/sandbox/slack/oauth/v2/authorize"
        form = {**page.forms[CLIENT_TEAM], "action": "allow"}
        async with browser.post(
            URL(base).join(URL(action)), data=form, allow_redirects=False
        ) as answer:
            assert answer.status == 302
    finally:
        await runner.cleanup()


# -- oauth.v2.access


async def test_a_code_is_exchanged_for_a_bot_token_of_that_team(
    fake: FakeSlack, running: RunningFake, browser: aiohttp.ClientSession, client: AsyncWebClient
) -> None:
    code = await install(browser, running, user="U0DAVE")
    answer = await client.oauth_v2_access(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code, redirect_uri=REDIRECT
    )
    token = answer["access_token"]
    assert token.startswith("xoxb-")
    assert answer["team"] == {"id": CLIENT_TEAM, "name": "Client Co"}
    assert answer["authed_user"] == {"id": "U0DAVE"}
    assert answer["bot_user_id"] == fake.teams[CLIENT_TEAM].bot_user_id
    assert answer["scope"] == ",".join(SCOPES)
    assert (answer["token_type"], answer["app_id"]) == ("bot", "A0APP")
    assert (answer["enterprise"], answer["is_enterprise_install"]) == (None, False)
    assert "refresh_token" not in answer.data  # type: ignore[operator]
    who = await AsyncWebClient(token=token, base_url=running.api_url).auth_test()
    assert (who["team_id"], who["user_id"]) == (CLIENT_TEAM, answer["bot_user_id"])
    assert "client_secret" not in fake.calls_to("oauth.v2.access")[0].args


async def test_credentials_may_come_as_form_fields(
    running: RunningFake, browser: aiohttp.ClientSession
) -> None:
    code = await install(browser, running)
    form = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": code}
    async with browser.post(f"{running.api_url}oauth.v2.access", data=form) as answer:
        body = await answer.json()
    assert body["ok"] is True
    assert body["team"]["id"] == CLIENT_TEAM


async def test_wrong_client_credentials_are_refused(
    running: RunningFake, browser: aiohttp.ClientSession, client: AsyncWebClient
) -> None:
    code = await install(browser, running)
    assert (
        await refusal(
            client.oauth_v2_access(client_id="9.9", client_secret=CLIENT_SECRET, code=code)
        )
        == "invalid_client_id"
    )
    assert (
        await refusal(client.oauth_v2_access(client_id=CLIENT_ID, client_secret="nope", code=code))
        == "bad_client_secret"
    )
    answer = await client.oauth_v2_access(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code
    )
    assert answer["ok"] is True  # the refusals did not use the code up


async def test_a_code_is_single_use_short_lived_and_bound_to_its_redirect(
    clock: Clock, running: RunningFake, browser: aiohttp.ClientSession, client: AsyncWebClient
) -> None:
    credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    code = await install(browser, running)
    await client.oauth_v2_access(**credentials, code=code)
    assert await refusal(client.oauth_v2_access(**credentials, code=code)) == "invalid_code"
    assert await refusal(client.oauth_v2_access(**credentials, code="made-up")) == "invalid_code"
    other = await install(browser, running)
    assert (
        await refusal(client.oauth_v2_access(**credentials, code=other, redirect_uri="http://x/"))
        == "bad_redirect_uri"
    )
    late = await install(browser, running)
    clock.now += 601
    assert await refusal(client.oauth_v2_access(**credentials, code=late)) == "invalid_code"


async def test_installing_again_issues_a_new_token(
    fake: FakeSlack, running: RunningFake, browser: aiohttp.ClientSession, client: AsyncWebClient
) -> None:
    credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    first = await client.oauth_v2_access(**credentials, code=await install(browser, running))
    again = await client.oauth_v2_access(**credentials, code=await install(browser, running))
    assert first["access_token"] != again["access_token"]
    assert fake.token_label(first["access_token"]) == f"{CLIENT_TEAM} bot #1"
    assert fake.token_label(again["access_token"]) == f"{CLIENT_TEAM} bot #2"
    await AsyncWebClient(token=again["access_token"], base_url=running.api_url).auth_test()
    assert fake.calls_to("auth.test")[-1].token_label == f"{CLIENT_TEAM} bot #2"


# -- token rotation


async def test_rotation_refreshes_tokens_once_and_old_tokens_expire(
    fake: FakeSlack,
    clock: Clock,
    running: RunningFake,
    browser: aiohttp.ClientSession,
    client: AsyncWebClient,
) -> None:
    fake.configure_app(token_rotation=True, token_lifetime=3600)
    credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    first = await client.oauth_v2_access(**credentials, code=await install(browser, running))
    assert first["refresh_token"].startswith("xoxe-1-")
    assert first["expires_in"] == 3600
    refreshed = await client.oauth_v2_access(
        **credentials, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert refreshed["token_type"] == "bot"
    assert refreshed["team"] == {"id": CLIENT_TEAM, "name": "Client Co"}
    assert refreshed["access_token"] not in (first["access_token"], None)
    assert refreshed["refresh_token"] != first["refresh_token"]
    assert (
        await refusal(
            client.oauth_v2_access(
                **credentials, grant_type="refresh_token", refresh_token=first["refresh_token"]
            )
        )
        == "invalid_refresh_token"
    )
    old = AsyncWebClient(token=first["access_token"], base_url=running.api_url)
    new = AsyncWebClient(token=refreshed["access_token"], base_url=running.api_url)
    assert (await old.auth_test())["team_id"] == CLIENT_TEAM  # still valid until it expires
    clock.now += 3600
    assert await refusal(old.auth_test()) == "token_expired"
    assert await refusal(new.auth_test()) == "token_expired"


async def test_expire_tokens_forces_a_refresh_which_slack_sdk_performs(
    fake: FakeSlack, running: RunningFake, browser: aiohttp.ClientSession, client: AsyncWebClient
) -> None:
    fake.configure_app(token_rotation=True)
    first = await client.oauth_v2_access(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=await install(browser, running)
    )
    fake.expire_tokens(CLIENT_TEAM)
    bot = AsyncWebClient(token=first["access_token"], base_url=running.api_url)
    assert await refusal(bot.auth_test()) == "token_expired"
    rotator = AsyncTokenRotator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, client=client)
    refreshed = await rotator.perform_bot_token_rotation(
        bot=Bot(
            app_id="A0APP",
            team_id=CLIENT_TEAM,
            bot_token=first["access_token"],
            bot_refresh_token=first["refresh_token"],
            bot_token_expires_at=int(time.time()),  # due: slack-sdk reads the real clock
            bot_id=fake.teams[CLIENT_TEAM].bot_id,
            bot_user_id=first["bot_user_id"],
            installed_at=time.time(),
        ),
        minutes_before_expiration=5,
    )
    assert refreshed is not None
    assert refreshed.bot_token is not None
    who = await AsyncWebClient(token=refreshed.bot_token, base_url=running.api_url).auth_test()
    assert who["team_id"] == CLIENT_TEAM


# -- uninstall


async def test_uninstall_revokes_the_teams_tokens_and_returns_the_events(
    fake: FakeSlack, running: RunningFake, browser: aiohttp.ClientSession, client: AsyncWebClient
) -> None:
    fake.configure_app(token_rotation=True)
    credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    first = await client.oauth_v2_access(**credentials, code=await install(browser, running))
    events = fake.uninstall(CLIENT_TEAM)
    bot = AsyncWebClient(token=first["access_token"], base_url=running.api_url)
    assert await refusal(bot.chat_postMessage(channel="C0CLIENT", text="hi")) == "token_revoked"
    assert (
        await refusal(
            client.oauth_v2_access(
                **credentials, grant_type="refresh_token", refresh_token=first["refresh_token"]
            )
        )
        == "invalid_refresh_token"
    )
    assert [e["event"]["type"] for e in events] == ["app_uninstalled", "tokens_revoked"]
    for event in events:
        assert (event["type"], event["team_id"], event["api_app_id"]) == (
            "event_callback",
            CLIENT_TEAM,
            "A0APP",
        )
    assert events[1]["event"]["tokens"] == {"oauth": [], "bot": [first["bot_user_id"]]}
    assert events[0]["event_id"] != events[1]["event_id"]
    signed = SlackRequests("signing-secret").callback(events[0])
    assert signed.json() == events[0]
    assert SignatureVerifier("signing-secret").is_valid_request(signed.body, signed.headers)
    again = await client.oauth_v2_access(**credentials, code=await install(browser, running))
    assert (
        await AsyncWebClient(token=again["access_token"], base_url=running.api_url).auth_test()
    )["ok"]

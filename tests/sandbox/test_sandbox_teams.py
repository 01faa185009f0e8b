"""The sandbox's two Slack teams: the integrator's installed at start through the real OAuth
flow, a client's installed from the page's link through the fake Slack's consent page, each
team's cards in its own channels with its own token, and a restart that keeps it all.

Always on SQLite: the sandbox refuses any other database."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from yarl import URL

from tests.harness import eventually
from tests.sandbox.sandboxes import Sandbox, running
from trame_bot.bootstrap import Deps
from trame_bot.sandbox import seed
from trame_bot.sandbox.app import API_KEYS
from trame_bot.services import connectors, installations, workflows, workspaces
from trame_bot.store.models import AuditEvent, SlackInstallation

Json = dict[str, Any]
NORTHWIND, GLOBEX = seed.NORTHWIND_TEAM, seed.GLOBEX_TEAM
OLIVIA, GRACE, HUGO = seed.OWNER.id, seed.GLOBEX_OWNER.id, seed.GLOBEX_MEMBER.id
# slack-sdk sends the client credentials with aiohttp's BasicAuth, deprecated in aiohttp 3.14.
pytestmark = pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with running(tmp_path) as started:
        yield started


async def installed_events(deps: Deps) -> list[AuditEvent]:
    async with deps.db.reading() as session:
        found = await session.execute(
            select(AuditEvent).where(AuditEvent.action == "slack.installed").order_by(AuditEvent.id)
        )
        return list(found.scalars())


def team_of(state: Json, team_id: str) -> Json:
    return next(t for t in state["teams"] if t["id"] == team_id)


class ConsentPage(HTMLParser):
    """What a person sees on the fake Slack's consent page: a form per team, its fields."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self.actions: dict[str, str] = {}
        self._team: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "section" and "data-team" in found:
            self._team = found["data-team"]
            self.forms[self._team] = {}
        elif self._team is not None and tag == "form":
            self.actions[self._team] = found["action"]
        elif self._team is not None and tag == "input" and found.get("type") == "hidden":
            self.forms[self._team][found["name"]] = found.get("value", "")


# ---- the integrator's Slack -------------------------------------------------------------------


async def test_the_integrators_slack_is_installed_at_start_through_oauth(
    sandbox: Sandbox,
) -> None:
    (event,) = await installed_events(sandbox.deps)
    assert (event.entity_id, event.actor) == (seed.WORKSPACE, f"slack:{OLIVIA}")
    data = json.loads(event.data)
    assert (data["team_id"], data["team_name"]) == (NORTHWIND.id, NORTHWIND.name)
    # The code was exchanged at the fake's oauth.v2.access, with the app's credentials.
    assert [c.ok for c in sandbox.fake.calls_to("oauth.v2.access")] == [True]
    assert sandbox.fake.teams[NORTHWIND.id].installer == OLIVIA
    globex = await installations.slack_connection(sandbox.deps.ctx, seed.GLOBEX)
    assert globex.state == "not installed"

    olivia = await sandbox.state(OLIVIA)
    assert olivia["team"] == NORTHWIND.id
    assert [c["id"] for c in olivia["channels"]] == [seed.APPROVALS, seed.OPS]
    assert {p["id"] for p in olivia["people"]} == {p.id for p in seed.PEOPLE}
    assert team_of(olivia, NORTHWIND.id) | {"installed": True, "install_url": None} == team_of(
        olivia, NORTHWIND.id
    )
    link = team_of(olivia, GLOBEX.id)["install_url"]
    assert link.startswith(f"{sandbox.url}/slack/install?grant=")
    assert f"team={GLOBEX.id}" in link


async def test_each_team_sees_only_its_own_channels_and_people(sandbox: Sandbox) -> None:
    grace = await sandbox.state(GRACE)
    assert grace["team"] == GLOBEX.id
    assert [c["id"] for c in grace["channels"]] == list(GLOBEX.channels)
    assert {p["id"] for p in grace["people"]} == {GRACE, HUGO}
    assert grace["engine"]["workspace"] == seed.GLOBEX
    assert {w["key"] for w in grace["engine"]["workflows"]} == {"shipment-sync", "customs-filing"}
    assert team_of(grace, GLOBEX.id)["installed"] is False
    # Grace cannot act in Acme's channels, nor Olivia in Globex's.
    for user, channel in ((GRACE, seed.APPROVALS), (OLIVIA, seed.GLOBEX_APPROVALS)):
        body = {"user": user, "channel": channel, "text": "/trame help"}
        async with sandbox.session.post(f"{sandbox.url}/sandbox/command", json=body) as response:
            assert response.status == 400
    # Each person's request names their own team: Grace's reaches the bot as Globex's.
    assert sandbox.relay.slack(GRACE).team_id == GLOBEX.id
    assert sandbox.relay.slack(OLIVIA).team_id == NORTHWIND.id


# ---- a client's own Slack -----------------------------------------------------------------


async def install_globex(sandbox: Sandbox, link: str) -> tuple[int, str]:
    """Grace's browser: the link, the consent page, Allow, and the redirect to our callback."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        async with browser.get(link, allow_redirects=False) as started:
            assert started.status == 302, await started.text()
            consent_url = started.headers["Location"]
        assert consent_url.startswith(sandbox.deps.settings.slack_authorize_url + "?")
        async with browser.get(consent_url) as consent:
            assert consent.status == 200
            page = ConsentPage()
            page.feed(await consent.text())
        assert list(page.forms) == [GLOBEX.id]  # the link names the team being installed
        form = page.forms[GLOBEX.id] | {"user": GRACE, "action": "allow"}
        post_to = URL(consent_url).join(URL(page.actions[GLOBEX.id]))
        async with browser.post(post_to, data=form, allow_redirects=False) as allowed:
            assert allowed.status == 302, await allowed.text()
            callback = allowed.headers["Location"]
        assert callback.startswith(f"{sandbox.url}/slack/oauth_redirect?code=")
        async with browser.get(callback, allow_redirects=False) as done:
            return done.status, await done.text()


async def test_a_client_installs_its_own_slack_and_gets_its_cards_there(sandbox: Sandbox) -> None:
    link = team_of(await sandbox.state(GRACE), GLOBEX.id)["install_url"]
    status, page = await install_globex(sandbox, link)
    assert status == 200, page
    assert "installed in the Slack team Globex for globex" in page
    grace = await sandbox.state(GRACE)
    assert team_of(grace, GLOBEX.id) | {"installed": True, "install_url": None} == team_of(
        grace, GLOBEX.id
    )
    events = await installed_events(sandbox.deps)
    assert [(e.entity_id, e.actor) for e in events] == [
        (seed.WORKSPACE, f"slack:{OLIVIA}"),
        (seed.GLOBEX, f"slack:{GRACE}"),
    ]

    # A run of a Globex workflow: its card in Globex's channel, sent with Globex's token.
    key = sandbox.app[API_KEYS][seed.GLOBEX]
    run_id = await sandbox.request_run("shipment-sync", HUGO, key=key)
    ts = await sandbox.card_of(run_id, seed.GLOBEX_APPROVALS)
    (posted,) = [
        c for c in sandbox.fake.calls_to("chat.postMessage") if run_id in json.dumps(c.args)
    ]
    assert (posted.args["channel"], posted.team_id) == (seed.GLOBEX_APPROVALS, GLOBEX.id)
    for channel in NORTHWIND.channels:
        assert all(run_id not in str(m.blocks) for m in sandbox.fake.messages(channel))
    assert "Shipment sync" not in json.dumps(await sandbox.state(OLIVIA))
    assert "Approval needed: Shipment sync" in (await sandbox.state(GRACE))["channels"][0]["html"]

    # Grace decides on the page: the click reaches the bot as Globex's, the card is updated there.
    click = {"block_id": "run_actions", "action_id": "run_approve", "value": run_id}
    answer = await sandbox.post("action", user=GRACE, channel=seed.GLOBEX_APPROVALS, ts=ts, **click)
    assert answer["ok"] is True
    assert await sandbox.run_state(run_id, key=key) == "approved"

    async def updated() -> bool:
        return any(
            c.team_id == GLOBEX.id and c.args.get("ts") == ts and c.ok
            for c in sandbox.fake.calls_to("chat.update")
        )

    await eventually(updated)

    # The link worked once: a second use is refused with a page that says why.
    status, page = await _open(link)
    assert status == 403
    assert "already used" in page
    assert len(await installed_events(sandbox.deps)) == 2


async def _open(link: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser,
        browser.get(link, allow_redirects=False) as response,
    ):
        return response.status, await response.text()


# ---- a restart --------------------------------------------------------------------------------


async def _seeded(deps: Deps) -> list[Any]:
    ctx, found = deps.ctx, []
    for key in (seed.WORKSPACE, seed.GLOBEX):
        found += [
            sorted((w.key, w.status, w.version) for w in await workflows.list_workflows(ctx, key)),
            sorted((c.key, c.health) for c in await connectors.list_connectors(ctx, key)),
            sorted((m.slack_user_id, m.role) for m in await workspaces.list_members(ctx, key)),
        ]
    return found


async def test_a_restart_keeps_the_installs_and_seeds_nothing_again(tmp_path: Path) -> None:
    async with running(tmp_path) as first:
        seeded = await _seeded(first.deps)
        async with first.deps.db.reading() as session:
            (stored,) = (await session.execute(select(SlackInstallation))).scalars()
        installed_at = stored.installed_at

    assert (tmp_path / "sandbox.db.key").exists()
    async with running(tmp_path) as second:
        assert await _seeded(second.deps) == seeded
        assert len(await installed_events(second.deps)) == 1  # not installed again
        assert second.fake.calls_to("oauth.v2.access") == []
        async with second.deps.db.reading() as session:
            (stored,) = (await session.execute(select(SlackInstallation))).scalars()
        assert stored.installed_at == installed_at
        # The token stored at the first start still works: the fake was told it again.
        run_id = await second.request_run("vendor-onboarding")
        await second.card_of(run_id)
        (posted,) = [
            c for c in second.fake.calls_to("chat.postMessage") if run_id in json.dumps(c.args)
        ]
        assert (posted.team_id, posted.ok) == (NORTHWIND.id, True)
        # Globex is still to be installed, with a new link from this start.
        assert team_of(await second.state(GRACE), GLOBEX.id)["install_url"]

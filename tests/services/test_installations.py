"""Install links, OAuth states and installations through the real service on a real database:
forged, unknown, expired and used grants; states used twice or at once; tokens sealed at rest;
disconnects audited once; keys rotated."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from tests import factories as f
from trame_bot.bootstrap import Deps, build
from trame_bot.clock import FakeClock
from trame_bot.config import Settings
from trame_bot.domain.actors import Actor
from trame_bot.errors import ConfigError, Conflict, Forbidden, InvalidInput, TrameError
from trame_bot.services import audit, install_links, installations, workspaces
from trame_bot.services.installations import SlackInstall
from trame_bot.store.models import AuditEvent, InstallGrant, OAuthState, SlackInstallation
from trame_bot.vault import Vault, new_key

PUBLIC = "https://bot.example.com"
KEY = new_key()
TOKEN = "xoxb-client-team-SECRET-0001"
REFRESH = "xoxe-1-refresh-SECRET-0001"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return f.distributed_settings(database_url, KEY, public_url=PUBLIC)


def install(team: str = "T0CLIENT", token: str = TOKEN, name: str = "Client") -> SlackInstall:
    return SlackInstall(
        team_id=team,
        team_name=name,
        bot_token=token,
        bot_refresh_token=REFRESH,
        bot_user_id="U0BOTC",
        installed_by="U0ADMINC",
    )


async def link(deps: Deps, workspace: str = "acme", ttl: timedelta = timedelta(days=7)) -> str:
    return await install_links.create_install_link(deps.ctx, workspace, Actor.cli(), ttl, PUBLIC)


def signed(url: str) -> str:
    return parse_qs(urlsplit(url).query)["grant"][0]


async def raises(kind: type[TrameError], call: object, words: str) -> TrameError:
    with pytest.raises(kind) as caught:
        await call  # type: ignore[misc]
    assert words in caught.value.message, caught.value.message
    return caught.value


async def events(deps: Deps, action: str, workspace: str = "acme") -> list[AuditEvent]:
    async with deps.db.reading() as session:
        rows = await session.execute(select(AuditEvent).where(AuditEvent.action == action))
        found = list(rows.scalars().all())
    ws = await workspaces.get_workspace(deps.ctx, workspace)
    return [e for e in found if e.workspace_id == ws.id]


async def test_a_link_installs_once_binds_its_workspace_and_audits_without_the_secret(
    deps: Deps,
) -> None:
    await f.workspace(deps)
    url = await link(deps)
    assert url.startswith(f"{PUBLIC}/slack/install?grant=")
    grant = await install_links.check_grant(deps.ctx, signed(url))
    assert (grant.workspace, grant.expires_at) == ("acme", deps.clock.now() + timedelta(days=7))
    made = await events(deps, "slack.install_link_created")
    assert len(made) == 1
    assert signed(url) not in made[0].data
    assert grant.id not in made[0].data

    state = await install_links.start_install(deps.ctx, signed(url))
    done = await installations.complete_install(deps.ctx, state, install())
    assert (done.workspace, done.team_id, done.team_name) == ("acme", "T0CLIENT", "Client")

    ws = await workspaces.get_workspace(deps.ctx, "acme")
    assert ws.slack_team_id == "T0CLIENT"
    async with deps.db.reading() as session:
        row = (await session.execute(select(SlackInstallation))).scalar_one()
    assert TOKEN not in row.bot_token
    assert REFRESH not in (row.bot_refresh_token or "")
    assert Vault([KEY]).open(row.bot_token) == TOKEN
    bot = await installations.find_bot(deps.ctx, "T0CLIENT")
    assert bot is not None
    assert (bot.bot_token, bot.bot_refresh_token) == (TOKEN, REFRESH)
    (installed,) = await events(deps, "slack.installed")
    assert installed.actor == "slack:U0ADMINC"
    assert TOKEN not in installed.data
    assert '"team_name":"Client"' in installed.data
    assert (await audit.verify_chain(deps.ctx, "acme")).ok
    connection = await installations.slack_connection(deps.ctx, "acme")
    assert (connection.describe(), connection.team_name) == ("connected", "Client")

    # The link works once: a second visit, or a second callback with the same state, is refused.
    await raises(Forbidden, install_links.start_install(deps.ctx, signed(url)), "already used")
    await raises(
        Forbidden, installations.complete_install(deps.ctx, state, install()), "already completed"
    )


async def test_forged_unknown_expired_and_missing_grants_say_why(
    deps: Deps, clock: FakeClock
) -> None:
    await f.workspace(deps)
    url = await link(deps, ttl=timedelta(hours=1))
    good = signed(url)
    other_key = Vault([new_key()]).seal("install-grant:" + "x" * 32)
    for forged in (good[:-4] + "AAAA", "not-a-grant", other_key, Vault([KEY]).seal(TOKEN)):
        await raises(InvalidInput, install_links.check_grant(deps.ctx, forged), "not one")
        await raises(InvalidInput, install_links.start_install(deps.ctx, forged), "not one")
    await raises(Forbidden, install_links.start_install(deps.ctx, None), "needs the link")
    await raises(
        TrameError,
        install_links.check_grant(deps.ctx, Vault([KEY]).seal("install-grant:unknown")),
        "withdrawn",
    )
    state = await install_links.start_install(deps.ctx, good)
    clock.advance(timedelta(hours=1))
    await raises(Forbidden, install_links.check_grant(deps.ctx, good), "expired")
    await raises(Forbidden, installations.complete_install(deps.ctx, state, install()), "too long")
    await _nothing_stored(deps)


async def test_a_state_outlives_neither_ten_minutes_nor_a_forgery(
    deps: Deps, clock: FakeClock
) -> None:
    await f.workspace(deps)
    state = await install_links.start_install(deps.ctx, signed(await link(deps)))
    await raises(InvalidInput, installations.complete_install(deps.ctx, "forged", install()), "")
    await raises(InvalidInput, install_links.check_state(deps.ctx, None), "unknown state")
    clock.advance(timedelta(minutes=10))
    await raises(Forbidden, install_links.check_state(deps.ctx, state), "too long")
    await raises(Forbidden, installations.complete_install(deps.ctx, state, install()), "")
    await _nothing_stored(deps)


async def test_concurrent_callbacks_with_one_state_install_exactly_once(deps: Deps) -> None:
    await f.workspace(deps)
    state = await install_links.start_install(deps.ctx, signed(await link(deps)))
    # Two replicas, each its own connection pool, as a double-clicked callback would reach.
    other = build(deps.settings, clock=deps.clock)
    try:
        results = await asyncio.gather(
            *(
                installations.complete_install(ctx, state, install(token=f"xoxb-{n}-SECRET"))
                for n, ctx in enumerate((deps.ctx, other.ctx, deps.ctx, other.ctx))
            ),
            return_exceptions=True,
        )
    finally:
        await other.close()
    won = [r for r in results if isinstance(r, installations.Installed)]
    lost = [r for r in results if not isinstance(r, installations.Installed)]
    assert len(won) == 1, results
    assert all(isinstance(r, Forbidden | Conflict) for r in lost), results
    async with deps.db.reading() as session:
        assert len((await session.execute(select(SlackInstallation))).scalars().all()) == 1
    assert len(await events(deps, "slack.installed")) == 1


async def test_a_workspace_connected_to_another_team_is_not_moved(deps: Deps) -> None:
    await f.workspace(deps)
    first = await install_links.start_install(deps.ctx, signed(await link(deps)))
    await installations.complete_install(deps.ctx, first, install("T0FIRST", name="First"))
    url = await link(deps)
    second = await install_links.start_install(deps.ctx, signed(url))
    await raises(
        Conflict,
        installations.complete_install(deps.ctx, second, install("T0OTHER")),
        "already connected to another Slack team (First)",
    )
    # Refused: nothing stored, the link still usable, the workspace still on its team.
    async with deps.db.reading() as session:
        teams = (await session.execute(select(SlackInstallation.team_id))).scalars().all()
        states = (await session.execute(select(OAuthState.consumed_at))).scalars().all()
    assert teams == ["T0FIRST"]
    assert sum(s is not None for s in states) == 1
    await install_links.check_grant(deps.ctx, signed(url))
    # Once the first team uninstalled, the operator's new link may move the workspace.
    assert await installations.disconnect(deps.ctx, "T0FIRST", "app_uninstalled")
    again = await install_links.start_install(deps.ctx, signed(url))
    await installations.complete_install(deps.ctx, again, install("T0OTHER", name="Other"))
    assert (await workspaces.get_workspace(deps.ctx, "acme")).slack_team_id == "T0OTHER"


async def test_one_team_serves_several_workspaces_and_a_disconnect_is_audited_once_on_each(
    deps: Deps,
) -> None:
    await f.workspace(deps)
    await f.workspace(deps, "globex")
    for key in ("acme", "globex"):
        state = await install_links.start_install(deps.ctx, signed(await link(deps, key)))
        await installations.complete_install(deps.ctx, state, install())
    assert await installations.disconnect(deps.ctx, "T0CLIENT", "tokens_revoked")
    assert not await installations.disconnect(deps.ctx, "T0CLIENT", "tokens_revoked")
    assert not await installations.disconnect(deps.ctx, "T0NEVER", "app_uninstalled")
    for key in ("acme", "globex"):
        assert len(await events(deps, "slack.disconnected", key)) == 1
        connection = await installations.slack_connection(deps.ctx, key)
        assert connection.describe().startswith("disconnected since 2026-01-05 09:00 UTC")
        assert "(tokens_revoked)" in connection.describe()
    assert await installations.find_bot(deps.ctx, "T0CLIENT") is None
    # Reinstalled through a new link for one of them: both are connected again, both audited.
    state = await install_links.start_install(deps.ctx, signed(await link(deps)))
    await installations.complete_install(deps.ctx, state, install(token="xoxb-new-SECRET"))
    assert [c.state for c in await installations.slack_connections(deps.ctx)] == [
        "connected",
        "connected",
    ]
    assert len(await events(deps, "slack.reconnected", "globex")) == 1
    bot = await installations.find_bot(deps.ctx, "T0CLIENT")
    assert bot is not None
    assert bot.bot_token == "xoxb-new-SECRET"
    for key in ("acme", "globex"):
        assert (await audit.verify_chain(deps.ctx, key)).ok


async def test_keys_rotate_every_stored_token_once(deps: Deps) -> None:
    await f.workspace(deps)
    state = await install_links.start_install(deps.ctx, signed(await link(deps)))
    await installations.complete_install(deps.ctx, state, install())
    newer = new_key()
    rotated = build(replace(deps.settings, encryption_keys=(newer, KEY)), clock=deps.clock)
    try:
        assert await installations.reseal_tokens(rotated.ctx) == 1
        assert await installations.reseal_tokens(rotated.ctx) == 0
    finally:
        await rotated.close()
    async with deps.db.reading() as session:
        row = (await session.execute(select(SlackInstallation))).scalar_one()
    assert Vault([newer]).open(row.bot_token) == TOKEN
    assert Vault([newer]).open(row.bot_refresh_token or "") == REFRESH


async def test_links_need_the_key_the_address_and_an_existing_workspace(deps: Deps) -> None:
    await f.workspace(deps)
    keyless = build(replace(deps.settings, encryption_keys=()), clock=deps.clock)
    try:
        await raises(
            ConfigError,
            install_links.create_install_link(
                keyless.ctx, "acme", Actor.cli(), timedelta(days=1), PUBLIC
            ),
            "TRAME_ENCRYPTION_KEY",
        )
    finally:
        await keyless.close()
    await raises(
        ConfigError,
        install_links.create_install_link(deps.ctx, "acme", Actor.cli(), timedelta(days=1), None),
        "PUBLIC_URL",
    )
    await raises(TrameError, link(deps, "nope"), "no workspace 'nope'")
    await raises(
        Forbidden,
        install_links.create_install_link(
            deps.ctx, "acme", Actor.slack(f.MEMBER), timedelta(days=1), PUBLIC
        ),
        "",
    )


async def _nothing_stored(deps: Deps) -> None:
    async with deps.db.reading() as session:
        assert (await session.execute(select(SlackInstallation))).first() is None
        grants = (await session.execute(select(InstallGrant))).scalars().all()
    assert all(g.used_at is None for g in grants)
    assert (await workspaces.get_workspace(deps.ctx, "acme")).slack_team_id is None

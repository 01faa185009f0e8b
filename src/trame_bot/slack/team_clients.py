"""Which Slack client sends a workspace's outbox messages: the one configured token, or the token
of the installation of the workspace's Slack team, looked up when each message is sent (so a
reinstall's new token serves the rows queued before it)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.web.async_client import AsyncWebClient

from trame_bot.config import OneWorkspace, SlackMode
from trame_bot.errors import ConfigError
from trame_bot.services import installations
from trame_bot.services.context import Context
from trame_bot.services.outbox import Held
from trame_bot.slack.client import SlackConnections, build_client
from trame_bot.slack.installation_store import ROTATE_BEFORE_MINUTES, TokenRefresher
from trame_bot.store import installations as installation_store

log = logging.getLogger(__name__)

DEAD_TOKEN = frozenset({"invalid_auth", "account_inactive", "token_revoked"})
"""Slack's answers to a token that no longer works: no retry with the same token helps."""

EXPIRED = "token_expired"
"""A rotating token past its expiry although it was renewed before use (clocks apart, a renewal
refused): the message waits TOKEN_RETRY seconds and goes with whatever token is then stored.
Not an attempt: only time fixes it."""

RENEW_BEFORE = timedelta(minutes=ROTATE_BEFORE_MINUTES)

TOKEN_RETRY = 300.0
"""Seconds between tries of a token known to be refused (the configured one, or one the
encryption keys cannot open): one try per interval, not one per message."""


@dataclass(frozen=True)
class TeamClient:
    """A client holding one team's token; `sealed_token` is the stored form it was opened from,
    which tells a refused token apart from one a reinstall has already replaced."""

    client: AsyncWebClient
    team_id: str | None = None
    sealed_token: str | None = None


class TeamClients(Protocol):
    async def for_workspace(self, workspace_id: int | None) -> TeamClient:
        """The client for the workspace's Slack team, or Held when there is none to use."""
        ...

    async def refused(self, team: TeamClient, error: str) -> Held:
        """Slack answered a send with one of DEAD_TOKEN: record it, and say how the row waits."""
        ...


class ConfiguredToken:
    """One-workspace mode: `SLACK_BOT_TOKEN` serves every workspace.

    A refused token here is the operator's, not a client's, and only a new token fixes it: every
    Slack message is held (never failed, never counted as an attempt) and one ERROR line names
    the fix (replace SLACK_BOT_TOKEN and restart). The process then tries the token once every
    TOKEN_RETRY seconds rather than once per message; after a restart with a new token the held
    messages go within TOKEN_RETRY seconds, in order.
    """

    def __init__(self, ctx: Context, client: AsyncWebClient) -> None:
        self.ctx = ctx
        self.team = TeamClient(client)
        self._refused_until: datetime | None = None

    async def for_workspace(self, workspace_id: int | None) -> TeamClient:
        now = self.ctx.clock.now()
        if self._refused_until is not None and now < self._refused_until:
            wait = (self._refused_until - now).total_seconds()
            raise Held("Slack refuses SLACK_BOT_TOKEN", retry_after=wait)
        return self.team

    async def refused(self, team: TeamClient, error: str) -> Held:
        self._refused_until = self.ctx.clock.now() + timedelta(seconds=TOKEN_RETRY)
        log.error(
            "Slack refused SLACK_BOT_TOKEN (%s): every Slack message is held until the token "
            "works; replace SLACK_BOT_TOKEN and restart (tried again every %.0f s)",
            error,
            TOKEN_RETRY,
        )
        return Held(f"Slack refused SLACK_BOT_TOKEN ({error})", retry_after=TOKEN_RETRY)


class InstalledTeams:
    """Distributed mode: each workspace's messages go with its Slack team's bot token, opened
    from the vault. One client per team is kept while the team's stored token stays the same;
    a new token (reinstall, key rotation, renewal) replaces it. The clear token lives only
    inside that client, in this process's memory. A rotating token that expires within
    RENEW_BEFORE is renewed first (`refresher`), as Bolt's authorize does for requests."""

    def __init__(
        self,
        ctx: Context,
        make_client: Callable[[str], AsyncWebClient],
        refresher: TokenRefresher | None = None,
    ) -> None:
        if ctx.vault is None:
            raise ConfigError("distributed mode needs TRAME_ENCRYPTION_KEY to open Slack tokens")
        self.ctx = ctx
        self.vault = ctx.vault
        self.make_client = make_client
        self.refresher = refresher
        self._clients: dict[str, TeamClient] = {}

    async def for_workspace(self, workspace_id: int | None) -> TeamClient:
        if workspace_id is None:
            raise Held("a message of no workspace has no Slack team")
        async with self.ctx.db.lookups.connection() as lookup:
            installation = await installation_store.of_workspace(lookup, workspace_id)
        if installation is not None and self._expiring(installation):
            installation = await self._renewed(installation.team_id)
        if installation is None:
            raise Held("Slack is not installed for this workspace yet")
        if installation.disconnected_at is not None:
            raise Held(f"Slack disconnected ({installation.disconnected_reason})")
        return self._client(installation.team_id, installation.bot_token)

    def _expiring(self, installation: Any) -> bool:
        """`installation`: a row of `slack_installations` (`store.installations.of_team`)."""
        expires = installation.bot_token_expires_at
        return (
            self.refresher is not None
            and installation.bot_refresh_token is not None
            and installation.disconnected_at is None
            and expires is not None
            and expires - self.ctx.clock.now() < RENEW_BEFORE
        )

    async def _renewed(self, team_id: str) -> Any | None:
        assert self.refresher is not None
        try:
            await self.refresher.bot_token(team_id)
        except SlackTokenRotationError as exc:
            # Perhaps another replica spent the refresh token and stored its renewal: the next
            # try reads that. If the team is gone, the send with the old token will say so.
            log.warning("Slack refused to renew the token of team %s: %s", team_id, exc)
            raise Held("Slack refused to renew the token", retry_after=TOKEN_RETRY) from None
        async with self.ctx.db.lookups.connection() as lookup:
            return await installation_store.of_team(lookup, team_id)

    def _client(self, team_id: str, sealed: str) -> TeamClient:
        cached = self._clients.get(team_id)
        if cached is not None and cached.sealed_token == sealed:
            return cached
        try:
            token = self.vault.open(sealed)
        except ConfigError as exc:
            log.error("cannot open the Slack token of team %s: %s", team_id, exc)
            raise Held(str(exc), retry_after=TOKEN_RETRY) from None
        team = TeamClient(self.make_client(token), team_id, sealed)
        self._clients[team_id] = team
        return team

    async def refused(self, team: TeamClient, error: str) -> Held:
        """The installation is marked disconnected (audited once, by the installations
        service) unless a reinstall already replaced the refused token; either way the row
        goes back unclaimed, and the due query holds it until the team is connected again."""
        assert team.team_id is not None
        async with self.ctx.db.reading() as session:
            current = await installation_store.for_team(session, team.team_id)
        if current is not None and current.bot_token == team.sealed_token:
            await installations.disconnect(self.ctx, team.team_id, error)
        if self._clients.get(team.team_id) is team:
            del self._clients[team.team_id]
        return Held(f"Slack refused the token of team {team.team_id} ({error})")


def team_clients(
    ctx: Context,
    mode: SlackMode,
    api_url: str,
    *,
    timeout: int,
    connections: SlackConnections | None = None,
) -> TeamClients:
    """Built once per process (bootstrap); every client has `build_client`'s URL, timeout and
    retries, and the server's shared `connections`."""

    def client(token: str) -> AsyncWebClient:
        return build_client(token, api_url, timeout=timeout, connections=connections)

    if isinstance(mode, OneWorkspace):
        return ConfiguredToken(ctx, client(mode.bot_token))
    return InstalledTeams(ctx, client, TokenRefresher(ctx, mode, client("")))

"""slack_sdk's installation and state stores over our tables (distributed mode), and the token
refresh the outbox needs: thin adapters over `services/installations.py`, so Bolt's authorize,
its token rotation and the outbox read and write the same sealed rows."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from trame_bot.config import Distributed
from trame_bot.services import install_links, installations
from trame_bot.services.context import Context
from trame_bot.services.installations import OpenedBot

log = logging.getLogger(__name__)
ROTATE_BEFORE_MINUTES = 120
"""Slack's rotated bot tokens live 12 hours; one this close to its expiry is renewed first."""


def token_less(client: AsyncWebClient) -> AsyncWebClient:
    """Our client (base URL, timeout, retries) without a token: Bolt sets each request's
    team's token itself, and the code exchange and refreshes carry the app's credentials."""
    return AsyncWebClient(
        base_url=client.base_url,
        timeout=client.timeout,
        retry_handlers=list(client.retry_handlers),
        logger=client.logger,
    )


class InstallationStore(AsyncInstallationStore):
    """Bolt's view of our installations: finds a connected team's bot (tokens opened for the
    request) and saves what token rotation renewed, sealed. Installs themselves are not saved
    here: they go through `installations.complete_install`, with their grant, in the
    callback. A disconnected team has no bot until it is installed again."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        if installation.team_id and installation.bot_token:
            await installations.save_rotated_tokens(
                self._ctx,
                installation.team_id,
                installation.bot_token,
                installation.bot_refresh_token,
                installations.expiry(installation.bot_token_expires_at),
            )

    async def async_save_bot(self, bot: Bot) -> None:
        if bot.team_id:
            await installations.save_rotated_tokens(
                self._ctx,
                bot.team_id,
                bot.bot_token,
                bot.bot_refresh_token,
                installations.expiry(bot.bot_token_expires_at),
            )

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        found = await installations.find_bot(self._ctx, team_id) if team_id else None
        return None if found is None else _bot(found)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        if user_id is not None or not team_id:
            return None  # no user tokens are kept: the app acts as its bot only
        found = await installations.find_bot(self._ctx, team_id)
        if found is None:
            return None
        return Installation(
            app_id=found.app_id,
            enterprise_id=found.enterprise_id,
            team_id=found.team_id,
            team_name=found.team_name,
            bot_token=found.bot_token,
            bot_id=found.bot_id,
            bot_user_id=found.bot_user_id,
            bot_scopes=found.bot_scopes or "",
            bot_refresh_token=found.bot_refresh_token,
            bot_token_expires_at=installations.epoch(found.bot_token_expires_at),
            user_id=found.installed_by or "",
            installed_at=found.installed_at.timestamp(),
        )


def _bot(found: OpenedBot) -> Bot:
    return Bot(
        app_id=found.app_id,
        enterprise_id=found.enterprise_id,
        team_id=found.team_id,
        team_name=found.team_name,
        bot_token=found.bot_token,
        bot_id=found.bot_id or "",
        bot_user_id=found.bot_user_id or "",
        bot_scopes=found.bot_scopes or "",
        bot_refresh_token=found.bot_refresh_token,
        bot_token_expires_at=installations.epoch(found.bot_token_expires_at),
        installed_at=found.installed_at.timestamp(),
    )


class GrantStateStore(AsyncOAuthStateStore):
    """OAuth states in `oauth_states`, each bound to the install link's grant. A state is
    consumed inside `installations.complete_install` (with the grant and the installation, in
    one transaction), not on its own, so `async_consume` is not offered."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await install_links.start_install(self._ctx, kwargs.get("grant"))


class TokenRefresher:
    """Renews a team's rotating bot token outside Bolt, as Bolt's authorize does on a request:
    the outbox sends cards and digests with no request from Slack to trigger it, and a token
    left 12 hours would answer `token_expired`. The refresh goes through our client (to
    `SLACK_API_URL`) and the new pair is stored sealed. Refreshes of one team take turns within
    this process, so two sends never spend the same refresh token."""

    def __init__(self, ctx: Context, mode: Distributed, client: AsyncWebClient) -> None:
        self._store = InstallationStore(ctx)
        self._rotator = AsyncTokenRotator(
            client_id=mode.client_id, client_secret=mode.client_secret, client=token_less(client)
        )
        self._turns: dict[str, asyncio.Lock] = {}

    async def bot_token(self, team_id: str) -> str | None:
        """The team's bot token, renewed first when it expires within two hours; None when the
        team is not installed or disconnected. Slack refusing the refresh raises
        `slack_sdk.oauth.token_rotation.SlackTokenRotationError`."""
        async with self._turns.setdefault(team_id, asyncio.Lock()):
            bot = await self._store.async_find_bot(enterprise_id=None, team_id=team_id)
            if bot is None or bot.bot_refresh_token is None:
                return None if bot is None else bot.bot_token
            renewed = await self._rotator.perform_bot_token_rotation(
                bot=bot, minutes_before_expiration=ROTATE_BEFORE_MINUTES
            )
            if renewed is None:
                return bot.bot_token
            await self._store.async_save_bot(renewed)
            return renewed.bot_token

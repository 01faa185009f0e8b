"""The Slack Web API client, and how its failures become outbox retry decisions."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from trame_bot.services.outbox import DeliveryError

# Errors that no retry can fix: the message or the target is wrong.
PERMANENT = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "invalid_arguments",
        "user_not_found",
        "cannot_dm_bot",
        "message_not_found",
        "cant_update_message",
        "view_too_large",
    }
)


class SlackConnections:
    """One keep-alive connection pool for every Slack client of a server. Without it, the SDK
    opens a session (a TCP, and in production a TLS, connection) for each call and closes it
    after: most of what a card update cost. Opened when the server starts, as a session
    belongs to the running event loop; clients attached before then get it when it opens."""

    def __init__(self) -> None:
        # Weak: a team's client is replaced when its token rotates, and must not be kept.
        self._clients: weakref.WeakSet[AsyncWebClient] = weakref.WeakSet()
        self._session: aiohttp.ClientSession | None = None

    def attach(self, client: AsyncWebClient) -> AsyncWebClient:
        self._clients.add(client)
        client.session = self._session
        return client

    async def open(self) -> None:
        self._session = aiohttp.ClientSession()
        for client in self._clients:
            client.session = self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        for client in self._clients:
            client.session = None
        if session is not None:
            await session.close()

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[None]:
        """Open while the block runs (the server's life, or a worker's)."""
        await self.open()
        try:
            yield
        finally:
            await self.close()


def build_client(
    token: str,
    base_url: str,
    *,
    timeout: int = 10,
    connections: SlackConnections | None = None,
) -> AsyncWebClient:
    """Retries 429 (honouring Retry-After), 5xx and connection errors, a couple of times each;
    the outbox backs off further on its own. `connections`: the server's shared pool (a CLI
    command's client, used once, opens its own)."""
    client = AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )
    return client if connections is None else connections.attach(client)


def delivery_error(exc: Exception) -> DeliveryError:
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
        if status == 429:
            retry_after = exc.response.headers.get("retry-after") or exc.response.headers.get(
                "Retry-After"
            )
            return DeliveryError(
                f"slack rate limited ({error or 429})", retry_after=float(retry_after or 30)
            )
        if status >= 500:
            return DeliveryError(f"slack answered {status}")
        return DeliveryError(f"slack refused: {error or status}", retryable=error not in PERMANENT)
    if isinstance(exc, SlackClientError | aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return DeliveryError(f"slack unreachable: {type(exc).__name__}")
    raise exc

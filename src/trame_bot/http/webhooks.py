"""Decision webhooks to the engine: signed, sent from the outbox, retried until a 2xx.

Signature: `X-Trame-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>` with the
timestamp (Unix seconds) in `X-Trame-Timestamp`. The event's `id` is stable across retries, so
a receiver can drop a repeated delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import aiohttp

from trame_bot.services import workspaces
from trame_bot.services.context import Context
from trame_bot.services.outbox import DeliveryError
from trame_bot.store.models import OutboxMessage

TIMEOUT = aiohttp.ClientTimeout(total=10)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


class WebhookSender:
    def __init__(
        self,
        ctx: Context,
        session: Callable[[], aiohttp.ClientSession],
        clock: Callable[[], float] = time.time,
    ):
        self.ctx = ctx
        self.session = session
        self.clock = clock

    async def __call__(self, message: OutboxMessage) -> None:
        if message.workspace_id is None:
            raise DeliveryError("webhook without a workspace", retryable=False)
        target = await workspaces.webhook_target(self.ctx, message.workspace_id)
        if target is None:
            raise DeliveryError("the workspace has no webhook URL any more", retryable=False)
        url, secret = target
        body = json.dumps(message.payload, separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "trame-bot-webhooks",
            "X-Trame-Timestamp": timestamp,
            "X-Trame-Signature": sign(secret, timestamp, body),
        }
        try:
            async with self.session().post(
                url, data=body, headers=headers, timeout=TIMEOUT
            ) as response:
                if 200 <= response.status < 300:
                    return
                retry_after = response.headers.get("Retry-After", "")
                raise DeliveryError(
                    f"receiver answered {response.status}",
                    retry_after=float(retry_after) if retry_after.isdigit() else None,
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"receiver unreachable: {type(exc).__name__}") from exc

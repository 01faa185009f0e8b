"""Delivering outbox rows after commit: at least once, with retries and backoff.

A crash between sending and marking a row sent can repeat one delivery; nothing is ever lost.
Receivers are told how to deduplicate (Slack cards are updated in place by their `ts`;
webhooks carry a stable event id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.values import counted
from trame_bot.services.context import Context
from trame_bot.store import audit as audit_store
from trame_bot.store import outbox as outbox_store
from trame_bot.store.models import OutboxMessage, Workspace

log = logging.getLogger(__name__)


class Kind(StrEnum):
    SLACK_CARD = "slack.card"
    """Post a run's approval card, or update it in place once posted. Payload: run_id."""
    SLACK_THREAD = "slack.thread"
    """A reply in a run card's thread. Payload: run_id, event, data."""
    SLACK_DM = "slack.dm"
    """A direct message. Payload: user, event, data."""
    SLACK_POST = "slack.post"
    """A message in a channel. Payload: channel, event, data."""
    WEBHOOK = "webhook"
    """A signed POST to the workspace's webhook URL. Payload: the event body."""


class DeliveryError(Exception):
    """A send failed. `retryable` False marks the row failed at once; `retry_after` (seconds)
    overrides the backoff (Slack's and receivers' Retry-After)."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


Sender = Callable[[OutboxMessage], Awaitable[None]]


async def enqueue(
    session: AsyncSession, ctx: Context, workspace: Workspace | None, kind: Kind, **payload: Any
) -> None:
    await outbox_store.enqueue(
        session,
        kind.value,
        payload,
        workspace_id=workspace.id if workspace else None,
        now=ctx.clock.now(),
    )


def backoff(attempts: int, *, base: float = 2.0, cap: float = 900.0) -> timedelta:
    """2 s, 4 s, 8 s … up to 15 min between attempts."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


class OutboxWorker:
    def __init__(
        self,
        ctx: Context,
        senders: Mapping[str, Sender],
        *,
        batch: int = 50,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 12,
    ) -> None:
        self.ctx = ctx
        self.senders = dict(senders)
        self.batch = batch
        self.lease = lease
        self.max_attempts = max_attempts
        self.wake = asyncio.Event()

    async def deliver_due(self, stop: asyncio.Event | None = None) -> int:
        """Send every row that is due and has a sender here; return how many were sent.

        Kinds without a sender in this process (the CLI has none) wait for one that has."""
        async with self.ctx.db.reading() as session:
            due = await outbox_store.due(
                session, self.ctx.clock.now(), self.batch, self.senders.keys()
            )
        sent = 0
        for message_id in due:
            if stop is not None and stop.is_set():
                break  # shutting down: the rest waits in the table for the next process
            sent += await self._deliver(message_id)
        return sent

    async def _deliver(self, message_id: int) -> int:
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as session:
            message = await outbox_store.claim(session, message_id, now, self.lease)
        if message is None:  # another worker took it
            return 0
        try:
            await self.senders[message.kind](message)
        except DeliveryError as exc:
            await self._failed(message, str(exc), exc.retryable, exc.retry_after)
            return 0
        except Exception as exc:  # a bug in a sender must not stop delivery of other rows
            log.exception("outbox sender for %s crashed on message %s", message.kind, message.id)
            await self._failed(message, f"internal error: {type(exc).__name__}", True, None)
            return 0
        async with self.ctx.db.transaction() as session:
            row = await session.get(OutboxMessage, message.id)
            assert row is not None
            row.state, row.sent_at, row.locked_until, row.last_error = (
                outbox_store.SENT,
                self.ctx.clock.now(),
                None,
                None,
            )
        return 1

    async def _failed(
        self, message: OutboxMessage, error: str, retryable: bool, retry_after: float | None
    ) -> None:
        now = self.ctx.clock.now()
        give_up = not retryable or message.attempts >= self.max_attempts
        async with self.ctx.db.transaction() as session:
            row = await session.get(OutboxMessage, message.id)
            assert row is not None
            row.last_error, row.locked_until = error[:2000], None
            if give_up:
                row.state = outbox_store.FAILED
                if row.workspace_id is not None:
                    workspace = await session.get(Workspace, row.workspace_id)
                    assert workspace is not None
                    await audit_store.append(
                        session,
                        workspace,
                        at=now,
                        actor="system",
                        action="delivery.failed",
                        entity_type="outbox",
                        entity_id=str(row.id),
                        summary=f"gave up delivering {row.kind} after {counted(row.attempts, 'attempt')}",
                        data={"kind": row.kind, "attempts": row.attempts, "error": error[:500]},
                    )
            else:
                delay = timedelta(seconds=retry_after) if retry_after else backoff(row.attempts)
                row.next_attempt_at = now + delay
        level = logging.WARNING if give_up else logging.INFO
        log.log(
            level,
            "delivery of %s #%s failed (attempt %s): %s",
            message.kind,
            message.id,
            message.attempts,
            error,
        )

    async def run(self, stop: asyncio.Event, *, poll: float = 1.0) -> None:
        """Deliver until `stop` is set; `wake` cuts the wait short after a commit."""
        while not stop.is_set():
            # Clear before delivering: a commit during this round must wake the next one.
            self.wake.clear()
            try:
                await self.deliver_due(stop)
            except Exception:
                log.exception("outbox delivery round failed; retrying")
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
            await asyncio.wait(waiters, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

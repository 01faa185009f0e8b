"""Delivering outbox rows after commit: at least once, with retries and backoff.

A crash between sending and marking a row sent can repeat one delivery; nothing is ever lost.
Receivers are told how to deduplicate (Slack cards are updated in place by their `ts`;
webhooks carry a stable event id). Slack rows whose team cannot be reached are held, not
failed: see `Held`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.values import counted
from trame_bot.services.context import Context
from trame_bot.store import audit as audit_store
from trame_bot.store import outbox as outbox_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.audit import ChainOwner
from trame_bot.store.models import OutboxMessage, SlackInstallation, Workspace

log = logging.getLogger(__name__)


class Kind(StrEnum):
    SLACK_CARD = "slack.card"
    """Post a run's approval card, or update it in place once posted. Payload: run_id."""
    SLACK_THREAD = "slack.thread"
    """A reply in a run card's thread. Payload: run_id, event, data."""
    SLACK_DM = "slack.dm"
    """A direct message. Payload: user, event, data."""
    SLACK_POST = "slack.post"
    """A message in a channel. Payload: channel, event, data (and alert_id for a connector
    alert, whose message is recorded so that it can be updated in place)."""
    SLACK_ALERT = "slack.alert"
    """Update a posted connector alert in place. Payload: alert_id."""
    WEBHOOK = "webhook"
    """A signed POST to the workspace's webhook URL. Payload: the event body."""


SLACK_KINDS = frozenset(kind.value for kind in Kind if kind is not Kind.WEBHOOK)
"""What goes through the workspace's Slack team, and is held while that team cannot be reached;
webhooks to the engine never are."""
WORK_TABLES = frozenset(
    {OutboxMessage.__tablename__, SlackInstallation.__tablename__, Workspace.__tablename__}
)
"""A commit that wrote to these may have given the worker work: a new row, or a held one
whose Slack team is (re)connected. Other commits cannot, so they do not wake it."""


class DeliveryError(Exception):
    """A send failed. `retryable` False marks the row failed at once; `retry_after` (seconds)
    overrides the backoff (Slack's and receivers' Retry-After)."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Held(Exception):
    """The row cannot go now through no fault of its own: its Slack team is not installed, was
    disconnected (uninstall, revoked token) or its token is refused. It goes back to the queue
    without counting as an attempt, so no wait, however long, makes it fail; `retry_after`
    (seconds) delays it, otherwise the due query skips it until the team is connected again."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


Sender = Callable[[OutboxMessage], Awaitable[None]]


def installed_only(ctx: Context) -> frozenset[str]:
    """The kinds held while their workspace's Slack team has no connected installation: the
    Slack kinds in distributed mode; none with one configured token (it serves every row)."""
    return SLACK_KINDS if ctx.distributed else frozenset()


async def held_messages(ctx: Context, workspace_key: str) -> int:
    """How many of the workspace's Slack messages are held until its Slack is (re)installed."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, workspace_key)
        return await outbox_store.held(session, installed_only(ctx), workspace_id=workspace.id)


async def enqueue(
    session: AsyncSession, ctx: Context, workspace: ChainOwner | None, kind: Kind, **payload: Any
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
        lanes: int = 8,
    ) -> None:
        self.ctx = ctx
        self.lanes = lanes
        """Rows sent at once (each waits on Slack or a receiver; see `in_order`)."""
        self.senders = dict(senders)
        self.batch = batch
        self.lease = lease
        self.max_attempts = max_attempts
        self.installed_only = installed_only(ctx)
        self.wake = asyncio.Event()

    async def deliver_due(self, stop: asyncio.Event | None = None) -> int:
        """Send every row that is due (up to a batch) and has a sender here; return how many
        were sent.

        Kinds without a sender in this process (the CLI has none) wait for one that has. The
        batch is claimed in one transaction and sent in groups that keep their order (`in_order`:
        a card is posted before the replies in its thread), several groups at once; rows sent are marked in the background
        (`_SentMarks`), so no send waits for a commit of its own."""
        # A read first: an idle round takes no write lock and commits nothing (a commit would
        # wake this worker again).
        async with self.ctx.db.reading() as session:
            due = await outbox_store.due(
                session,
                self.ctx.clock.now(),
                1,
                self.senders.keys(),
                installed_only=self.installed_only,
            )
        if not due:
            return 0
        claimed_at = self.ctx.clock.now()
        async with self.ctx.db.transaction() as session:
            batch = await outbox_store.claim_due(
                session,
                claimed_at,
                self.batch,
                self.senders.keys(),
                self.lease,
                installed_only=self.installed_only,
            )
        self.wake.set()  # more may be due (a full batch, rows released): look again at once
        marks = _SentMarks(self.ctx)
        loop = asyncio.get_running_loop()
        # Sends take real time whatever the clock says (tests move theirs by hand).
        started, budget = loop.time(), self.lease.total_seconds() / 2
        unsent: list[int] = []
        lanes = asyncio.Semaphore(self.lanes)

        async def deliver_in_order(messages: list[OutboxMessage]) -> None:
            async with lanes:
                for n, message in enumerate(messages):
                    # Each row is started well inside its lease (a send may take several Slack
                    # retries); the rest goes back to the queue for this or another worker.
                    late = loop.time() - started > budget
                    if late or (stop is not None and stop.is_set()):
                        unsent.extend(m.id for m in messages[n:])
                        return
                    if await self._deliver(message):
                        marks.add(message.id, self.ctx.clock.now())

        try:
            await asyncio.gather(*(deliver_in_order(group) for group in in_order(batch)))
            if unsent:
                await self._release(unsent)
        finally:
            await marks.flush()
        return marks.count

    async def _deliver(self, message: OutboxMessage) -> bool:
        """One attempt at a claimed row; True when it was sent (for the caller to mark)."""
        try:
            await self.senders[message.kind](message)
        except Held as exc:
            await self._held(message, str(exc), exc.retry_after)
            return False
        except DeliveryError as exc:
            await self._failed(message, str(exc), exc.retryable, exc.retry_after)
            return False
        except Exception as exc:  # a bug in a sender must not stop delivery of other rows
            log.exception("outbox sender for %s crashed on message %s", message.kind, message.id)
            await self._failed(message, f"internal error: {type(exc).__name__}", True, None)
            return False
        return True

    async def _release(self, ids: list[int]) -> None:
        async with self.ctx.db.transaction() as session:
            await outbox_store.release(session, ids)

    async def _held(self, message: OutboxMessage, reason: str, retry_after: float | None) -> None:
        """Back in the queue as if never claimed: the claim's attempt is given back."""
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as session:
            row = await session.get(OutboxMessage, message.id)
            assert row is not None
            row.attempts = max(0, row.attempts - 1)
            row.locked_until = None
            row.last_error = f"held: {reason}"[:2000]
            row.next_attempt_at = now + timedelta(seconds=retry_after or 0)
        log.info("%s #%s held: %s", message.kind, message.id, reason)

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


def in_order(batch: Sequence[OutboxMessage]) -> list[list[OutboxMessage]]:
    """The batch in groups whose rows must go one after another, oldest first: a run's card,
    its thread replies and updates; a channel's posts; a person's DMs; an alert's updates; a
    workspace's webhooks. Groups go at once, up to `lanes`: one slow receiver no longer holds
    up every other message, and Slack's answers overlap instead of adding up."""
    groups: dict[tuple[str, str], list[OutboxMessage]] = {}
    for message in batch:
        groups.setdefault(_order_key(message), []).append(message)
    return list(groups.values())


def _order_key(message: OutboxMessage) -> tuple[str, str]:
    payload = message.payload
    for field in ("run_id", "alert_id", "channel", "user"):
        if payload.get(field) is not None:
            return field, str(payload[field])
    return "workspace", str(message.workspace_id)


class _SentMarks:
    """Marks rows sent in the background, one transaction for whatever was sent while the
    previous one committed (group commit). The worker keeps sending meanwhile, so a batch costs
    a few transactions rather than one per row, and a crash repeats only the deliveries whose
    mark had not committed yet (receivers deduplicate, as for any repeat)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.count = 0
        self._waiting: list[tuple[int, datetime]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, message_id: int, at: datetime) -> None:
        self.count += 1
        self._waiting.append((message_id, at))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while self._waiting:
            sent, self._waiting = self._waiting, []
            try:
                async with self.ctx.db.transaction() as session:
                    await outbox_store.mark_sent(session, sent)
            except Exception:
                # Not marked: the rows are sent again once their lease ends (at least once).
                log.exception("could not mark %s outbox rows sent", len(sent))

    async def flush(self) -> None:
        """Wait for every mark; shielded, so that a worker cancelled at shutdown still records
        what it sent."""
        if self._task is not None:
            await asyncio.shield(self._task)

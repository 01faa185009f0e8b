"""The outbox worker's life in a process: inside the server (`trame-bot serve`, the default) or
on its own (`trame-bot outbox`), for a deployment whose web processes run `serve --no-outbox`
so that answering Slack never waits behind delivering to it.

Either way the worker is woken by this process's commits that give it work and otherwise looks
every `poll` seconds: on its own it sees no commit of the web processes, so it polls more
often. Any number of workers may run on one database: each message is claimed by one
(`store.outbox.claim_due`, with a lease)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp

from trame_bot.http.webhooks import WebhookSender
from trame_bot.services.context import Context
from trame_bot.services.outbox import WORK_TABLES, Kind, OutboxWorker, Sender

log = logging.getLogger(__name__)
WORKER_GRACE = 8.0
"""Seconds the outbox worker gets to finish its current message at shutdown."""
SERVER_POLL = 1.0
"""Seconds between looks in the server, whose own commits wake the worker at once."""
ALONE_POLL = 0.25
"""Seconds between looks of `trame-bot outbox`, which no web process's commit can wake."""


@asynccontextmanager
async def delivering(
    ctx: Context, senders: Mapping[str, Sender], *, poll: float = SERVER_POLL
) -> AsyncIterator[None]:
    """The worker sending Slack messages (`senders`) and webhooks while the block runs. At the
    end it stops after the message in flight: the rest waits in the table. A send stuck on a
    slow receiver is abandoned; its lease expires and it is sent again."""
    async with aiohttp.ClientSession() as http:
        worker = OutboxWorker(
            ctx, {**senders, Kind.WEBHOOK.value: WebhookSender(ctx, lambda: http)}
        )
        ctx.db.on_commit(worker.wake.set, tables=WORK_TABLES)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop, poll=poll))
        try:
            yield
        finally:
            stop.set()
            try:
                await asyncio.wait_for(task, timeout=WORKER_GRACE)
            except TimeoutError:
                log.warning("outbox worker stopped mid-delivery; the message will be sent again")

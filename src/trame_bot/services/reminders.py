"""Reminding reviewers once, after the workspace's reminder delay."""

from __future__ import annotations

from datetime import timedelta

from trame_bot.domain.approvals import reminder_due
from trame_bot.services.context import Context
from trame_bot.services.outbox import Kind, enqueue
from trame_bot.store import runs as store
from trame_bot.store import workspaces as workspace_store

MAX_MENTIONS = 20


async def remind_due(ctx: Context) -> int:
    """A thread reply under each card that has waited past the delay, naming the reviewers who
    have not decided (the named reviewers, or the members other than the requester)."""
    now = ctx.clock.now()
    async with ctx.db.reading() as session:
        candidates = [
            (run.id, ws.id)
            for run, ws in await store.unreminded(session, now)
            if reminder_due(
                run.requested_at, timedelta(seconds=ws.reminder_after_seconds), now, reminded=False
            )
        ]
    sent = 0
    for run_id, workspace_id in candidates:
        async with ctx.db.transaction() as session:
            if not await store.mark_reminded(session, run_id, now):
                continue
            run = await store.find(session, run_id)
            assert run is not None
            decided = {d.user for d in await store.decisions(session, run_id)}
            reviewers = list(run.reviewers) or [
                m.slack_user_id for m in await workspace_store.members(session, workspace_id)
            ]
            waiting = [u for u in reviewers if u not in decided and u != run.requested_by]
            workspace = await workspace_store.by_id(session, workspace_id)
            await enqueue(
                session,
                ctx,
                workspace,
                Kind.SLACK_THREAD,
                run_id=run_id,
                event="run.reminder",
                data={"reviewers": waiting[:MAX_MENTIONS]},
            )
            sent += 1
    return sent

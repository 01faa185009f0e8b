"""A settled run's outcome: announcing it (the requester's DM, the engine's webhook), and the
answer a late decision or cancellation gets. Shared by deciding and closing runs."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.errors import Conflict
from trame_bot.services.context import Context
from trame_bot.services.outbox import Kind, enqueue
from trame_bot.store.audit import ChainOwner
from trame_bot.store.models import Run

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


class AlreadyDecided(Conflict):
    """A late or repeated click: the run was settled before this decision arrived."""

    def __init__(self, run: Run) -> None:
        when = run.decided_at.strftime("%Y-%m-%d %H:%M UTC") if run.decided_at else "earlier"
        by = f" by {run.decided_by}" if run.decided_by else ""
        super().__init__(f"this run was already {run.state}{by} at {when}")
        self.state = run.state
        self.decided_by = run.decided_by
        self.decided_at = run.decided_at


def is_slack_user(name: str | None) -> bool:
    return bool(name and _SLACK_USER.match(name))


async def announce_outcome(
    session: AsyncSession,
    ctx: Context,
    workspace: ChainOwner,
    webhook_url: str | None,
    workflow: tuple[str, str],
    run: Run,
    event: str,
) -> None:
    """The requester's DM and the engine's webhook, for `workflow` (its key and name)."""
    workflow_key, workflow_name = workflow
    if is_slack_user(run.requested_by):
        await enqueue(
            session,
            ctx,
            workspace,
            Kind.SLACK_DM,
            user=run.requested_by,
            event=event,
            data={
                "run_id": run.id,
                "workflow": workflow_key,
                "name": workflow_name,
                "state": run.state.value,
                "decided_by": run.decided_by,
                "reason": run.reason,
            },
        )
    if webhook_url:
        await enqueue(
            session,
            ctx,
            workspace,
            Kind.WEBHOOK,
            id=uuid.uuid4().hex,
            type=event,
            run=run.id,
            workflow=workflow_key,
            state=run.state.value,
            decided_by=run.decided_by,
            reason=run.reason,
            fingerprint=run.fingerprint,
            at=_iso(run.decided_at or ctx.clock.now()),
        )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")

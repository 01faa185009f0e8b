"""Reading what a run's approval card shows, and recording where the card was posted."""

from __future__ import annotations

from sqlalchemy import update

from trame_bot.domain.plan import steps_from_dicts
from trame_bot.domain.sensitive import masked_details, prompt_warnings
from trame_bot.domain.views import RunCard, StepView
from trame_bot.errors import NotFound
from trame_bot.services.context import Context
from trame_bot.store import card as card_store
from trame_bot.store.models import Run


async def run_card(ctx: Context, run_id: str) -> RunCard:
    """What the run's card shows, in one statement on the driver (`store.card`): every click
    and every decision rebuilds a card, so this read is on the busiest path after commands."""
    async with ctx.db.lookups.connection() as lookup:
        run = await card_store.card_of(lookup, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}")
    health, widened = card_store.health_of(run), card_store.widened(run)
    return RunCard(
        run_id=run.id,
        workspace_key=run.workspace_key,
        channel=run.slack_channel or run.approvals_channel,
        slack_ts=run.slack_ts,
        workflow_key=run.workflow_key,
        workflow_name=run.workflow_name,
        workflow_status=run.workflow_status,
        production=run.production,
        requested_by=run.requested_by,
        source=run.source,
        trigger=run.trigger_key,
        steps=tuple(
            StepView(
                s.name,
                s.tool,
                s.connector,
                s.access,
                health.get(s.connector),
                scopes_widened=s.connector in widened,
            )
            for s in steps_from_dicts(run.plan)
        ),
        details=masked_details(run.details),
        prompt_warnings=tuple(prompt_warnings(run.prompt)),
        fingerprint=run.fingerprint,
        approvals=run.approvals,
        required_approvals=run.required_approvals,
        reviewers=tuple(run.reviewers),
        state=run.state,
        reason=run.reason,
        decided_by=run.decided_by,
        decided_at=run.decided_at,
        requested_at=run.requested_at,
        expires_at=run.expires_at,
        decisions=tuple(card_store.decisions_of(run)),
    )


async def card_message(ctx: Context, run_id: str) -> tuple[str, str | None]:
    """Where the run's card is: its channel and message ts (None until it is posted)."""
    async with ctx.db.lookups.connection() as lookup:
        found = await card_store.card_message(lookup, run_id)
    if found is None:
        raise NotFound(f"no run {run_id!r}")
    return found


async def record_card_posted(ctx: Context, run_id: str, channel: str, ts: str) -> bool:
    """Remember the card's message; False if another delivery recorded one first (kept)."""
    async with ctx.db.transaction() as session:
        result = await session.execute(
            update(Run)
            .where(Run.id == run_id, Run.slack_ts.is_(None))
            .values(slack_channel=channel, slack_ts=ts)
            .returning(Run.id)
            .execution_options(synchronize_session=False)
        )
        return result.one_or_none() is not None

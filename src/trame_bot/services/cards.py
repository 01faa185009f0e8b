"""Reading what a run's approval card shows, and recording where the card was posted."""

from __future__ import annotations

from sqlalchemy import update

from trame_bot.domain.plan import steps_from_dicts
from trame_bot.domain.sensitive import masked_details, prompt_warnings
from trame_bot.domain.views import DecisionView, RunCard, StepView
from trame_bot.errors import NotFound
from trame_bot.services.context import Context
from trame_bot.store import connectors as connector_store
from trame_bot.store import runs as run_store
from trame_bot.store.models import Run, Workflow, Workspace


async def run_card(ctx: Context, run_id: str) -> RunCard:
    async with ctx.db.lookup() as session:
        run = await run_store.find(session, run_id)
        if run is None:
            raise NotFound(f"no run {run_id!r}")
        workspace = await session.get(Workspace, run.workspace_id)
        workflow = await session.get(Workflow, run.workflow_id)
        assert workspace is not None
        assert workflow is not None
        steps = steps_from_dicts(run.plan)
        health = await connector_store.health_of(
            session, workspace.id, (s.connector for s in steps)
        )
        decisions = await run_store.decisions(session, run.id)
        widened = await connector_store.widened_since(
            session, workspace.id, (s.connector for s in steps), run.requested_at
        )
    return RunCard(
        run_id=run.id,
        workspace_key=workspace.key,
        channel=run.slack_channel or workspace.approvals_channel,
        slack_ts=run.slack_ts,
        workflow_key=workflow.key,
        workflow_name=workflow.name,
        workflow_status=run.workflow_status,
        production=workflow.production,
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
            for s in steps
        ),
        details=masked_details(run.details),
        prompt_warnings=tuple(prompt_warnings(workflow.prompt)),
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
        decisions=tuple(
            DecisionView(d.user, d.verdict, d.reason, d.category, d.at) for d in decisions
        ),
    )


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

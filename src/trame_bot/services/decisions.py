"""Deciding a run: one reviewer's approve or decline, and whether they may."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain import approvals, values
from trame_bot.domain.actors import Actor
from trame_bot.domain.approvals import CardChannel
from trame_bot.domain.enums import DeclineCategory, Role, RunState, Verdict
from trame_bot.errors import Conflict, Forbidden, InvalidInput
from trame_bot.services.context import Context
from trame_bot.services.outbox import Kind, enqueue
from trame_bot.services.run_outcomes import AlreadyDecided, announce_outcome
from trame_bot.store import audit as audit_store
from trame_bot.store import decisions as decision_store
from trame_bot.store import runs as store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.models import Decision, Run, Workflow, Workspace

NOT_KNOWN_HERE = "this run is not known here; the card may belong to another workspace"
CHANNEL_NOT_CONNECTED = "this card's channel is not connected to a workspace any more"


@dataclass(frozen=True)
class Decided:
    run: Run
    decision: Decision
    final: bool
    """True when this decision settled the run (quorum reached or declined)."""


async def decide(
    ctx: Context,
    run_id: str,
    actor: Actor,
    verdict: Verdict,
    *,
    reason: str | None = None,
    category: DeclineCategory | None = None,
    workspace_key: str | None = None,
    card: CardChannel | None = None,
) -> Decided:
    """Record one reviewer's approve or decline. Exactly one decision settles a run, however
    many arrive at once: the final state is set by a conditional UPDATE (see `count_vote`).

    The run must be of `workspace_key`'s workspace, or of the workspace of the `card`'s channel
    (a click: read with the run, in the same statement).
    """
    user = actor.user
    if user is None:
        raise Forbidden("a decision must be made by a person (a Slack user)")
    note = approvals.clean_reason(verdict, reason)
    now = ctx.clock.now()
    try:
        async with ctx.db.transaction() as session:
            found = await decision_store.decision_context(session, run_id, user, card)
            if (
                found is None
                and card
                and not await decision_store.card_workspace_key(session, card)
            ):
                raise InvalidInput(CHANNEL_NOT_CONNECTED)  # as it says when the run is known
            found = _placed(found, workspace_key, card)
            run, workspace = found.run, found.workspace
            _check_reviewer(run, user, verdict, found.role, workspace.allow_self_approval)
            if found.earlier is not None:
                earlier_verdict, earlier_at = found.earlier
                raise Conflict(
                    f"you already {earlier_verdict}d this run at {earlier_at:%Y-%m-%d %H:%M UTC}"
                )
            counted = await decision_store.count_vote(session, run, verdict, user, now, note)
            if counted is None:
                refreshed = await store.find(session, run.id)
                assert refreshed is not None
                raise AlreadyDecided(refreshed)
            state, received = counted
            decision = decision_store.record_decision(
                session,
                run.id,
                user,
                verdict,
                now,
                reason=note,
                category=category.value if category else None,
            )
            final = state.is_final
            action = {
                RunState.APPROVED: "run.approved",
                RunState.DECLINED: "run.declined",
            }.get(state, "run.approval_recorded")
            await audit_store.append(
                session,
                workspace,
                at=now,
                actor=actor.audit_name,
                action=action,
                entity_type="run",
                entity_id=run.id,
                summary=f"run of {found.workflow_key}: {verdict}d by {user} "
                f"({received} of {values.counted(run.required_approvals, 'approval')})"
                + (f" → {state}" if final else ""),
                data={
                    "workflow": found.workflow_key,
                    "verdict": verdict.value,
                    "state": state.value,
                    "approvals": received,
                    "required": run.required_approvals,
                    "category": decision.category,
                    "fingerprint": run.fingerprint,
                },
                reason=note,
            )
            await enqueue(
                session,
                ctx,
                workspace,
                Kind.SLACK_THREAD,
                run_id=run.id,
                event="run.decision",
                data={
                    "user": user,
                    "verdict": verdict.value,
                    "reason": note,
                    "category": decision.category,
                    "approvals": received,
                    "required": run.required_approvals,
                    "state": state.value,
                },
            )
            await enqueue(session, ctx, workspace, Kind.SLACK_CARD, run_id=run.id)
            if final:
                await announce_outcome(
                    session,
                    ctx,
                    workspace,
                    workspace.webhook_url,
                    (found.workflow_key, found.workflow_name),
                    run,
                    "run.decided",
                )
    except IntegrityError:
        # The same reviewer's concurrent click committed first (unique run + user).
        raise Conflict("your decision on this run is already recorded") from None
    return Decided(run, decision, final)


def _placed(
    found: decision_store.DecisionContext | None,
    workspace_key: str | None,
    card: CardChannel | None,
) -> decision_store.DecisionContext:
    """`found`, if the run is of the workspace the request is from: `workspace_key`'s, and
    that of the card's channel."""
    expected = [workspace_key] if workspace_key else []
    if card is not None and found is not None:
        if found.channel_workspace_key is None:
            raise InvalidInput(CHANNEL_NOT_CONNECTED)
        expected.append(found.channel_workspace_key)
    if found is None or any(key != found.workspace.key for key in expected):
        raise InvalidInput(NOT_KNOWN_HERE)
    return found


async def check_decision(
    ctx: Context, run_id: str, actor: Actor, verdict: Verdict, *, workspace_key: str | None = None
) -> tuple[Run, Workflow]:
    """Would `actor` be allowed to decide this run now? Raises the reason why not.

    Lets Slack refuse a decline before opening its form; `decide` checks again on submit.
    """
    async with ctx.db.reading() as session:
        run, workspace = await _run_in(session, run_id, workspace_key)
        await _check_open_to(session, run, workspace, actor.user or "", verdict)
        workflow = await session.get(Workflow, run.workflow_id)
        assert workflow is not None
        return run, workflow


async def _check_open_to(
    session: AsyncSession, run: Run, workspace: Workspace, user: str, verdict: Verdict
) -> None:
    """The run still waits, and `user` is one of its reviewers for this verdict."""
    role = await workspace_store.role_of(session, workspace.id, user)
    _check_reviewer(run, user, verdict, role, workspace.allow_self_approval)


def _check_reviewer(
    run: Run, user: str, verdict: Verdict, role: Role | None, allow_self_approval: bool
) -> None:
    if run.state.is_final:
        raise AlreadyDecided(run)
    approvals.check_reviewer(
        user,
        verdict,
        requester=run.requested_by,
        named_reviewers=run.reviewers,
        is_member=role is not None,
        allow_self_approval=allow_self_approval,
    )


async def _run_in(
    session: AsyncSession, run_id: str, workspace_key: str | None
) -> tuple[Run, Workspace]:
    run = await store.find(session, run_id)
    workspace = None if run is None else await session.get(Workspace, run.workspace_id)
    if run is None or workspace is None or (workspace_key and workspace.key != workspace_key):
        raise InvalidInput(NOT_KNOWN_HERE)
    return run, workspace

"""Requesting runs, deciding them, and closing them (expiry, cancellation)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.documents import RunRequestDoc
from trame_bot.domain import approvals, gate, values
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import DeclineCategory, Role, RunState, Verdict
from trame_bot.domain.plan import canonical_json, connectors_of, fingerprint, steps_from_dicts
from trame_bot.domain.roles import check_at_least
from trame_bot.errors import Conflict, Forbidden, InvalidInput
from trame_bot.services.access import require, workflow_with_role
from trame_bot.services.context import Context
from trame_bot.services.outbox import Kind, enqueue
from trame_bot.store import audit as audit_store
from trame_bot.store import connectors as connector_store
from trame_bot.store import lookups
from trame_bot.store import runs as store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.audit import ChainOwner
from trame_bot.store.models import Decision, Run, Workflow, Workspace

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
EXPIRY_BATCH = 200


@dataclass(frozen=True)
class Requested:
    run: Run
    created: bool
    """False when the idempotency key matched an earlier identical request."""
    workflow_key: str


@dataclass(frozen=True)
class Decided:
    run: Run
    decision: Decision
    final: bool
    """True when this decision settled the run (quorum reached or declined)."""


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


def _request_hash(workflow: Workflow, doc: RunRequestDoc) -> str:
    body = doc.model_dump(mode="json", exclude={"idempotency_key"})
    return hashlib.sha256(canonical_json({"workflow": workflow.key, **body}).encode()).hexdigest()


async def request_run(
    ctx: Context, key: str, ref: str, doc: RunRequestDoc, actor: Actor
) -> Requested:
    """Ask the gate whether a run may go: approved at once, pending reviewers, or rejected.

    The same idempotency key returns the same run; reusing it for another request is a Conflict.
    """
    try:
        return await _request_run(ctx, key, ref, doc, actor)
    except IntegrityError:
        # A concurrent request with the same idempotency key committed first: answer with it.
        if doc.idempotency_key is None:
            raise
        return await _request_run(ctx, key, ref, doc, actor)


async def _request_run(
    ctx: Context, key: str, ref: str, doc: RunRequestDoc, actor: Actor
) -> Requested:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        workspace, workflow, role = await workflow_with_role(session, key, ref, actor)
        check_at_least(role, Role.MEMBER, "requesting runs")
        request_hash = _request_hash(workflow, doc)
        if doc.idempotency_key is not None:
            earlier = await store.by_idempotency_key(session, workspace.id, doc.idempotency_key)
            if earlier is not None:
                if earlier.request_hash != request_hash:
                    raise Conflict(
                        "this idempotency key was used for a different request; use a new key"
                    )
                return Requested(earlier, created=False, workflow_key=workflow.key)
        steps = (
            steps_from_dicts(s.model_dump() for s in doc.steps)
            if doc.steps is not None
            else steps_from_dicts(workflow.steps)
        )
        health, scopes = await connector_store.health_and_scopes(
            session, workspace.id, connectors_of(steps)
        )
        verdict = gate.decide(
            workflow.status,
            doc.source,
            doc.trigger,
            steps,
            triggers=dict(await lookups.triggers(session, workflow.id)),
            connectors=health,
            scopes=scopes,
        )
        pending = verdict.state is RunState.PENDING
        requested_by = doc.requested_by or actor.requester
        run = store.add_run(
            session,
            id=uuid.uuid4().hex,
            workspace_id=workspace.id,
            workflow_id=workflow.id,
            workflow_version=workflow.version,
            workflow_status=workflow.status,
            source=doc.source,
            trigger_key=doc.trigger,
            requested_by=requested_by,
            plan=[step.to_dict() for step in steps],
            fingerprint=fingerprint(steps, workflow.version),
            details={**workflow.required_details, **doc.details},
            state=verdict.state,
            reason=verdict.reason,
            required_approvals=workflow.required_approvals,
            approvals=0,
            reviewers=list(workflow.reviewers),
            idempotency_key=doc.idempotency_key,
            request_hash=request_hash,
            requested_at=now,
            expires_at=approvals.expiry(now, timedelta(seconds=workspace.approval_ttl_seconds))
            if pending
            else None,
            decided_at=None if pending else now,
            decided_by=None if pending else "gate",
        )
        trigger = f" by trigger {doc.trigger}" if doc.trigger else ""
        await audit_store.append(
            session,
            workspace,
            at=now,
            actor=actor.audit_name,
            action="run.requested",
            entity_type="run",
            entity_id=run.id,
            summary=f"run of {workflow.key} requested{trigger} by {requested_by}: {run.state}",
            data={
                "workflow": workflow.key,
                "version": workflow.version,
                "status": workflow.status.value,
                "source": doc.source.value,
                "trigger": doc.trigger,
                "state": run.state.value,
                "fingerprint": run.fingerprint,
                "idempotency_key": doc.idempotency_key,
            },
            reason=verdict.reason,
        )
        if pending:
            await enqueue(session, ctx, workspace, Kind.SLACK_CARD, run_id=run.id, post=True)
    return Requested(run, created=True, workflow_key=workflow.key)


async def decide(
    ctx: Context,
    run_id: str,
    actor: Actor,
    verdict: Verdict,
    *,
    reason: str | None = None,
    category: DeclineCategory | None = None,
    workspace_key: str | None = None,
) -> Decided:
    """Record one reviewer's approve or decline. Exactly one decision settles a run, however
    many arrive at once: the final state is set by a conditional UPDATE (see `count_vote`).
    """
    user = actor.user
    if user is None:
        raise Forbidden("a decision must be made by a person (a Slack user)")
    note = approvals.clean_reason(verdict, reason)
    now = ctx.clock.now()
    try:
        async with ctx.db.transaction() as session:
            found = await store.decision_context(session, run_id, user)
            if found is None or (workspace_key and found.workspace.key != workspace_key):
                raise InvalidInput(
                    "this run is not known here; the card may belong to another workspace"
                )
            run, workspace = found.run, found.workspace
            _check_reviewer(run, user, verdict, found.role, workspace.allow_self_approval)
            if found.earlier is not None:
                earlier_verdict, earlier_at = found.earlier
                raise Conflict(
                    f"you already {earlier_verdict}d this run at {earlier_at:%Y-%m-%d %H:%M UTC}"
                )
            counted = await store.count_vote(session, run, verdict, user, now, note)
            if counted is None:
                refreshed = await store.find(session, run.id)
                assert refreshed is not None
                raise AlreadyDecided(refreshed)
            state, received = counted
            decision = store.record_decision(
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
                await _announce_outcome(
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
        raise InvalidInput("this run is not known here; the card may belong to another workspace")
    return run, workspace


async def close_run(
    session: AsyncSession,
    ctx: Context,
    workspace: Workspace,
    workflow: Workflow,
    run_id: str,
    state: str,
    actor: Actor,
    *,
    reason: str | None,
) -> bool:
    """Expire or cancel a pending run inside the caller's transaction; False if it was settled."""
    now = ctx.clock.now()
    final = RunState(state)
    if not await store.close(session, run_id, final, now, by=actor.audit_name, reason=reason):
        return False
    run = await store.find(session, run_id)
    assert run is not None
    await audit_store.append(
        session,
        workspace,
        at=now,
        actor=actor.audit_name,
        action=f"run.{final.value}",
        entity_type="run",
        entity_id=run_id,
        summary=f"run of {workflow.key} {final.value}",
        data={"workflow": workflow.key, "fingerprint": run.fingerprint},
        reason=reason,
    )
    await enqueue(
        session,
        ctx,
        workspace,
        Kind.SLACK_THREAD,
        run_id=run_id,
        event=f"run.{final.value}",
        data={"state": final.value, "reason": reason},
    )
    await enqueue(session, ctx, workspace, Kind.SLACK_CARD, run_id=run_id)
    await _announce_outcome(
        session,
        ctx,
        workspace,
        workspace.webhook_url,
        (workflow.key, workflow.name),
        run,
        f"run.{final.value}",
    )
    return True


async def _announce_outcome(
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


async def cancel_run(ctx: Context, key: str, run_id: str, actor: Actor, reason: str | None) -> Run:
    async with ctx.db.transaction() as session:
        workspace = await workspace_store.get(session, key)
        run = await store.get_in(session, workspace.id, run_id)
        if actor.user != run.requested_by or actor.user is None:
            await require(session, workspace, actor, Role.MEMBER, "cancelling runs")
        workflow = await session.get(Workflow, run.workflow_id)
        assert workflow is not None
        if not await close_run(
            session, ctx, workspace, workflow, run.id, "cancelled", actor, reason=reason
        ):
            raise AlreadyDecided(run)
        refreshed = await store.find(session, run.id)
        assert refreshed is not None
    return refreshed


async def expire_due_runs(ctx: Context) -> int:
    """Expire every pending run past its TTL; safe with several schedulers running at once."""
    async with ctx.db.reading() as session:
        due = await store.due_for_expiry(session, ctx.clock.now(), EXPIRY_BATCH)
    expired = 0
    for run_id in due:
        async with ctx.db.transaction() as session:
            run = await store.find(session, run_id)
            if run is None or run.state.is_final:
                continue
            workspace = await session.get(Workspace, run.workspace_id)
            workflow = await session.get(Workflow, run.workflow_id)
            assert workspace is not None
            assert workflow is not None
            ttl = timedelta(seconds=workspace.approval_ttl_seconds)
            reason = f"no decision within {ttl}"
            expired += await close_run(
                session, ctx, workspace, workflow, run_id, "expired", Actor.system(), reason=reason
            )
    return expired


async def verify_fingerprint(ctx: Context, key: str, run_id: str, presented: str) -> Run:
    """The engine's last check before it executes: approved, and the plan it will run is the
    one that was approved."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        run = await store.get_in(session, workspace.id, run_id)
    if run.state is not RunState.APPROVED:
        raise Conflict(f"the run is {run.state}, not approved: it must not execute")
    if presented.strip().lower() != run.fingerprint:
        raise Conflict("the plan differs from the approved one: request a new run for this plan")
    return run


async def get_run(ctx: Context, key: str, run_id: str) -> tuple[Run, Sequence[Decision]]:
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        run = await store.get_in(session, workspace.id, run_id)
        return run, await store.decisions(session, run.id)


async def workflow_key_of(ctx: Context, run: Run) -> str:
    async with ctx.db.reading() as session:
        workflow = await session.get(Workflow, run.workflow_id)
        assert workflow is not None
        return workflow.key

"""Requesting a run: the gate answers approved at once, pending reviewers, or rejected."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from trame_bot.documents import RunRequestDoc
from trame_bot.domain import approvals, gate
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, RunState
from trame_bot.domain.plan import canonical_json, connectors_of, fingerprint, steps_from_dicts
from trame_bot.domain.roles import check_at_least
from trame_bot.errors import Conflict
from trame_bot.services.access import workflow_for_run
from trame_bot.services.context import Context
from trame_bot.services.outbox import Kind, enqueue
from trame_bot.store import audit as audit_store
from trame_bot.store import connectors as connector_store
from trame_bot.store import runs as store
from trame_bot.store.models import Run
from trame_bot.store.run_scope import ByApiKey


@dataclass(frozen=True)
class Requested:
    run: Run
    created: bool
    """False when the idempotency key matched an earlier identical request."""
    workflow_key: str


def _request_hash(workflow_key: str, doc: RunRequestDoc) -> str:
    body = doc.model_dump(mode="json", exclude={"idempotency_key"})
    return hashlib.sha256(canonical_json({"workflow": workflow_key, **body}).encode()).hexdigest()


async def request_run(
    ctx: Context, key: str, ref: str, doc: RunRequestDoc, actor: Actor
) -> Requested:
    """Ask the gate whether a run may go: approved at once, pending reviewers, or rejected.

    The same idempotency key returns the same run; reusing it for another request is a Conflict.
    """
    return await _requested(ctx, key, ref, doc, actor)


async def request_run_with_api_key(
    ctx: Context, key_hash: str, ref: str, doc: RunRequestDoc
) -> Requested:
    """`request_run` by the API key (its hash) that names the workspace and acts: the key is
    checked in the read that finds the workflow (Unauthenticated when it is unknown or
    revoked), so an API request pays for one read."""
    return await _requested(ctx, ByApiKey(key_hash), ref, doc, None)


async def _requested(
    ctx: Context, workspace: str | ByApiKey, ref: str, doc: RunRequestDoc, actor: Actor | None
) -> Requested:
    try:
        return await _request_run(ctx, workspace, ref, doc, actor)
    except IntegrityError:
        # A concurrent request with the same idempotency key committed first: answer with it.
        if doc.idempotency_key is None:
            raise
        return await _request_run(ctx, workspace, ref, doc, actor)


async def _request_run(
    ctx: Context, workspace_named: str | ByApiKey, ref: str, doc: RunRequestDoc, actor: Actor | None
) -> Requested:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session, ctx.db.lookups.connection() as lookup:
        # The workflow is held until the run is written: a pause (or a save) committing
        # meanwhile would otherwise leave a run decided on what it replaced, a pending one
        # its cancelling missed (lock order: the workflow, then the audit head, as in every
        # transaction). The gate's other inputs come in the same read, so they are of the
        # same moment.
        scope, actor = await workflow_for_run(session, lookup, workspace_named, ref, actor)
        workspace, workflow = scope.workspace, scope.workflow
        check_at_least(scope.role, Role.MEMBER, "requesting runs")
        # What a reused idempotency key is compared with; a request without a key has no
        # use for it.
        request_hash = None
        if doc.idempotency_key is not None:
            request_hash = _request_hash(workflow.key, doc)
            earlier = await store.by_idempotency_key(session, workspace.id, doc.idempotency_key)
            if earlier is not None:
                if earlier.request_hash != request_hash:
                    raise Conflict(
                        "this idempotency key was used for a different request; use a new key"
                    )
                return Requested(earlier, created=False, workflow_key=workflow.key)
        if doc.steps is None:
            steps, health, scopes = steps_from_dicts(workflow.steps), scope.health, scope.scopes
            plan = workflow.fingerprint
        else:
            # A run bringing steps of its own may name other connectors: read on the driver
            # beside the transaction (a statement through the session costs more CPU, and
            # sees the same: read committed; on SQLite nobody else writes meanwhile).
            steps = steps_from_dicts(s.model_dump() for s in doc.steps)
            health, scopes = await connector_store.health_and_scopes(
                lookup, workspace.id, connectors_of(steps)
            )
            plan = fingerprint(steps, workflow.version)
        verdict = gate.decide(
            workflow.status,
            doc.source,
            doc.trigger,
            steps,
            triggers=dict(scope.triggers),
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
            fingerprint=plan,
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

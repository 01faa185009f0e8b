"""Requesting and deciding runs through the real services on a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import DeclineCategory, Health, Role, RunState, Status, Verdict
from trame_bot.domain.health import Report
from trame_bot.errors import Conflict, Forbidden, InvalidInput
from trame_bot.services import (
    cards,
    connectors,
    decisions,
    run_requests,
    runs,
    workflow_status,
    workflows,
)
from trame_bot.services.run_outcomes import AlreadyDecided
from trame_bot.store.models import AuditEvent, Decision, OutboxMessage


async def outbox_kinds(deps: Deps) -> list[str]:
    async with deps.db.reading() as session:
        rows = await session.execute(select(OutboxMessage.kind).order_by(OutboxMessage.id))
        return list(rows.scalars())


async def actions(deps: Deps, entity_id: str) -> list[str]:
    async with deps.db.reading() as session:
        rows = await session.execute(
            select(AuditEvent.action)
            .where(AuditEvent.entity_id == entity_id)
            .order_by(AuditEvent.seq)
        )
        return list(rows.scalars())


@pytest.mark.parametrize(
    ("status", "source", "expected"),
    [
        ("draft", "manual", RunState.PENDING),
        ("draft", "trigger", RunState.PENDING),
        ("pilot", "manual", RunState.PENDING),
        ("pilot", "trigger", RunState.PENDING),
        ("live", "manual", RunState.APPROVED),
        ("live", "trigger", RunState.APPROVED),
        ("paused", "manual", RunState.PENDING),
        ("paused", "trigger", RunState.REJECTED),
    ],
)
async def test_gate_answers_by_status_and_source(
    deps: Deps, status: str, source: str, expected: RunState
) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps, status="pilot")
    if status in ("draft", "live", "paused"):
        path = {"draft": ["draft"], "live": ["live"], "paused": ["paused"]}[status]
        for target in path:
            await workflow_status.change_status(
                deps.ctx,
                "acme",
                "invoice-sync",
                Status(target),
                Actor.cli(),
                reason="test",
                sign_off=workflow_status.SignOff("Jane", "mail"),
                rollback_plan="pause",
            )
    trigger = {"trigger": "nightly"} if source == "trigger" else {}
    run = await f.request(deps, source=source, **trigger)
    assert run.state is expected
    assert (run.expires_at is not None) == (expected is RunState.PENDING)
    assert await actions(deps, run.id) == ["run.requested"]
    assert ("slack.card" in await outbox_kinds(deps)) == (expected is RunState.PENDING)


async def test_unhealthy_connector_and_disabled_trigger_reject_with_reasons(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps)
    await connectors.report_health(
        deps.ctx, "acme", "sheets", Report.ERROR, "token revoked", Actor.api("engine")
    )
    await workflows.set_trigger(
        deps.ctx, "acme", "invoice-sync", "nightly", False, Actor.slack(f.MEMBER)
    )
    run = await f.request(deps, source="trigger", trigger="nightly")
    assert run.state is RunState.REJECTED
    assert run.reason is not None
    assert "trigger 'nightly' is disabled" in run.reason
    assert "connector 'sheets' needs attention" in run.reason


async def test_steps_naming_another_workspaces_connector_are_rejected(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.governed_workspace(deps, "globex")
    await f.connector(deps, "globex", "globex-only")
    await f.workflow(deps)
    foreign_step = {"name": "x", "tool": "t", "connector": "globex-only", "access": "write"}
    run = await f.request(deps, steps=[foreign_step])
    assert run.state is RunState.REJECTED
    assert "'globex-only' is not a connector of this workspace" in (run.reason or "")


async def test_steps_writing_through_a_read_only_connector_are_rejected(deps: Deps) -> None:
    """Least privilege holds for a run's own steps as for a saved plan: crm is granted read."""
    await f.governed_workspace(deps)
    await f.workflow(deps)
    writes = {"name": "Update", "tool": "salesforce.update", "connector": "crm", "access": "write"}
    run = await f.request(deps, steps=[writes])
    assert run.state is RunState.REJECTED
    assert "steps.0.access" in (run.reason or "")
    assert "'crm'" in (run.reason or "")
    reads = {**writes, "access": "read"}
    assert (await f.request(deps, steps=[reads])).state is RunState.PENDING


async def test_same_idempotency_key_returns_same_run_and_other_body_conflicts(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps)
    first = await f.request(deps, idempotency_key="k1")
    again = await f.request(deps, idempotency_key="k1")
    assert again.id == first.id
    with pytest.raises(Conflict, match="different request"):
        await f.request(deps, idempotency_key="k1", details={"batch": "other"})
    async with deps.db.reading() as session:
        assert (
            await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "run.requested")
            )
            == 1
        )


async def test_quorum_of_two_needs_two_distinct_reviewers(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps, required_approvals=2)
    run = await f.request(deps, by="U0REQUESTER")
    first = await decisions.decide(deps.ctx, run.id, Actor.slack(f.MEMBER), Verdict.APPROVE)
    assert (first.final, first.run.state, first.run.approvals) == (False, RunState.PENDING, 1)
    with pytest.raises(Conflict, match="already approved"):
        await decisions.decide(deps.ctx, run.id, Actor.slack(f.MEMBER), Verdict.APPROVE)
    second = await decisions.decide(deps.ctx, run.id, Actor.slack(f.ADMIN), Verdict.APPROVE)
    assert (second.final, second.run.state, second.run.decided_by) == (
        True,
        RunState.APPROVED,
        f.ADMIN,
    )
    with pytest.raises(AlreadyDecided, match=f"already approved by {f.ADMIN}"):
        await decisions.decide(
            deps.ctx, run.id, Actor.slack(f.OWNER), Verdict.DECLINE, reason="too late"
        )
    assert await actions(deps, run.id) == ["run.requested", "run.approval_recorded", "run.approved"]


async def test_one_decline_vetoes_and_needs_a_reason(deps: Deps) -> None:
    await f.governed_workspace(deps, webhook_url="https://engine.example/hook")
    await f.workflow(deps, required_approvals=2)
    run = await f.request(deps, by=f.OWNER)
    await decisions.decide(deps.ctx, run.id, Actor.slack(f.MEMBER), Verdict.APPROVE)
    with pytest.raises(InvalidInput, match="reason"):
        await decisions.decide(deps.ctx, run.id, Actor.slack(f.ADMIN), Verdict.DECLINE, reason="  ")
    declined = await decisions.decide(
        deps.ctx,
        run.id,
        Actor.slack(f.ADMIN),
        Verdict.DECLINE,
        reason="wrong sheet",
        category=DeclineCategory.WRONG_DATA,
    )
    assert declined.final
    assert declined.run.state is RunState.DECLINED
    assert declined.run.reason == "wrong sheet"
    kinds = await outbox_kinds(deps)
    # card posted; per decision a thread reply and a card update; the outcome DM and webhook once
    assert kinds.count("slack.dm") == 1
    assert kinds.count("webhook") == 1
    assert kinds.count("slack.thread") == 2


async def test_requester_cannot_approve_own_run_unless_allowed(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps)
    run = await f.request(deps, by=f.MEMBER)
    with pytest.raises(Forbidden, match="someone else must approve"):
        await decisions.decide(deps.ctx, run.id, Actor.slack(f.MEMBER), Verdict.APPROVE)
    await f.governed_workspace(deps, "selfie", allow_self_approval=True)
    await f.workflow(deps, "selfie")
    own = await f.request(deps, "selfie", by=f.MEMBER)
    assert (await decisions.decide(deps.ctx, own.id, Actor.slack(f.MEMBER), Verdict.APPROVE)).final


async def test_named_reviewers_replace_members_and_outsiders_are_refused(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps, reviewers=["U0CLIENT"])
    run = await f.request(deps)
    with pytest.raises(Forbidden, match="named reviewers"):
        await decisions.decide(deps.ctx, run.id, Actor.slack(f.OWNER), Verdict.APPROVE)
    assert (
        await decisions.decide(deps.ctx, run.id, Actor.slack("U0CLIENT"), Verdict.APPROVE)
    ).final
    await f.workflow(deps, key="open")
    other = await f.request(deps, wf="open")
    with pytest.raises(Forbidden, match="members of this workspace"):
        await decisions.decide(deps.ctx, other.id, Actor.slack("U0STRANGER"), Verdict.APPROVE)


async def test_a_run_of_another_workspace_cannot_be_decided_from_this_one(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.governed_workspace(deps, "globex")
    await f.workflow(deps, "globex")
    run = await f.request(deps, "globex")
    with pytest.raises(InvalidInput, match="not known here"):
        await decisions.decide(
            deps.ctx, run.id, Actor.slack(f.ADMIN), Verdict.APPROVE, workspace_key="acme"
        )


async def test_pending_runs_expire_once_after_the_ttl(deps: Deps, clock: FakeClock) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps)
    run = await f.request(deps)
    clock.advance(timedelta(hours=23))
    assert await runs.expire_due_runs(deps.ctx) == 0
    clock.advance(timedelta(hours=1))
    assert await runs.expire_due_runs(deps.ctx) == 1
    assert await runs.expire_due_runs(deps.ctx) == 0
    found, _ = await runs.get_run(deps.ctx, "acme", run.id)
    assert found.state is RunState.EXPIRED
    with pytest.raises(AlreadyDecided, match="already expired by system"):
        await decisions.decide(deps.ctx, run.id, Actor.slack(f.ADMIN), Verdict.APPROVE)


async def test_verify_fingerprint_only_for_the_approved_plan(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps)
    run = await f.request(deps)
    with pytest.raises(Conflict, match="pending, not approved"):
        await runs.verify_fingerprint(deps.ctx, "acme", run.id, run.fingerprint)
    await decisions.decide(deps.ctx, run.id, Actor.slack(f.ADMIN), Verdict.APPROVE)
    assert (
        await runs.verify_fingerprint(deps.ctx, "acme", run.id, run.fingerprint.upper())
    ).id == run.id
    with pytest.raises(Conflict, match="plan differs"):
        await runs.verify_fingerprint(deps.ctx, "acme", run.id, "0" * 64)


async def test_pause_cancels_pending_runs(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps)
    pending = [await f.request(deps) for _ in range(3)]
    await workflow_status.change_status(
        deps.ctx,
        "acme",
        "invoice-sync",
        Status.PAUSED,
        Actor.slack(f.MEMBER),
        reason="client asked",
    )
    for run in pending:
        found, _ = await runs.get_run(deps.ctx, "acme", run.id)
        assert found.state is RunState.CANCELLED
        assert found.reason == "workflow paused: client asked"
    assert await actions(deps, pending[0].id) == ["run.requested", "run.cancelled"]


async def test_members_only_request_runs(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps)
    from trame_bot.documents import RunRequestDoc

    with pytest.raises(Forbidden):
        await run_requests.request_run(
            deps.ctx, "acme", "invoice-sync", RunRequestDoc(), Actor.slack("U0STRANGER")
        )
    ok = await run_requests.request_run(
        deps.ctx, "acme", "invoice-sync", RunRequestDoc(), Actor.slack(f.MEMBER)
    )
    assert ok.run.requested_by == f.MEMBER


async def test_decisions_are_stored_once_per_reviewer(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps, required_approvals=3)
    run = await f.request(deps, by="U0REQ")
    for user in (f.MEMBER, f.ADMIN):
        await decisions.decide(deps.ctx, run.id, Actor.slack(user), Verdict.APPROVE)
    async with deps.db.reading() as session:
        users = (
            (await session.execute(select(Decision.user).where(Decision.run_id == run.id)))
            .scalars()
            .all()
        )
    assert sorted(users) == sorted([f.MEMBER, f.ADMIN])
    _ = Role


async def test_a_grant_narrowed_after_saving_refuses_the_workflows_own_plan(deps: Deps) -> None:
    """The gate's inputs read with the workflow (`store.run_scope.for_run`) carry each
    connector's grants as they are now, not as they were when the plan was saved."""
    await f.governed_workspace(deps)
    await f.workflow(deps)  # its "Append" step writes through sheets
    assert (await f.request(deps)).state is RunState.PENDING
    await f.connector(deps, "acme", "sheets", toolkit="google-sheets", scopes=["read"])
    run = await f.request(deps)
    assert run.state is RunState.REJECTED
    assert "connector 'sheets' is granted read only" in (run.reason or "")


async def test_a_card_shows_its_workspaces_connector_health_and_decisions_in_order(
    deps: Deps, clock: FakeClock
) -> None:
    """The card's one statement (`store.card`) reads the health of the connectors the plan
    names in the run's own workspace only (globex's crm is down, acme's is not), once for a
    connector two steps use, and the decisions come in the order they were made."""
    await f.governed_workspace(deps, "acme")
    await f.governed_workspace(deps, "globex")
    await connectors.report_health(deps.ctx, "globex", "crm", Report.ERROR, "down", f.CLI)
    steps = [
        {"name": "Fetch", "tool": "salesforce.query", "connector": "crm", "access": "read"},
        {"name": "Append", "tool": "sheets.append", "connector": "sheets", "access": "write"},
        {"name": "Check", "tool": "salesforce.get", "connector": "crm", "access": "read"},
    ]
    await f.workflow(deps, required_approvals=3, steps=steps)
    run = await f.request(deps)
    for reviewer in (f.OWNER, f.ADMIN, f.OTHER):
        clock.advance(timedelta(seconds=5))
        await decisions.decide(deps.ctx, run.id, Actor.slack(reviewer), Verdict.APPROVE)
    await connectors.report_health(deps.ctx, "acme", "sheets", Report.ERROR, "slow", f.CLI)

    card = await cards.run_card(deps.ctx, run.id)

    assert [(s.connector, s.health) for s in card.steps] == [
        ("crm", Health.OK),
        ("sheets", Health.NEEDS_ATTENTION),
        ("crm", Health.OK),
    ]
    assert [(d.user, d.verdict) for d in card.decisions] == [
        (f.OWNER, Verdict.APPROVE),
        (f.ADMIN, Verdict.APPROVE),
        (f.OTHER, Verdict.APPROVE),
    ]
    assert [d.at for d in card.decisions] == sorted(d.at for d in card.decisions)
    assert all(d.at.tzinfo is not None for d in card.decisions)
    assert card.state is RunState.APPROVED

"""Saving workflows, changing their status and toggling triggers through the real service."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest
from sqlalchemy import select, update

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, RunState, Status, Verdict
from trame_bot.domain.rollback import RollbackAction, RollbackPlan, read_stored
from trame_bot.errors import (
    ChannelNotBound,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    TrameError,
)
from trame_bot.services import decisions, naming, workflow_status, workflows
from trame_bot.store.models import AuditEvent, OutboxMessage, Workflow, Workspace

E = TypeVar("E", bound=TrameError)

STRANGER = "U0STRANGER"
SIGN_OFF = workflow_status.SignOff("Jane Roe (Acme CFO)", "email 2026-01-02 'go ahead'")
ROLLBACK = "pause the workflow and restore the sheet from its version history"
READ_CRM = {"name": "Fetch", "tool": "salesforce.query", "connector": "crm", "access": "read"}
WRITE_SHEETS = {"name": "Append", "tool": "sheets.append", "connector": "sheets", "access": "write"}


async def events(deps: Deps, ws: str = "acme", prefix: str = "workflow.") -> list[AuditEvent]:
    async with deps.db.reading() as session:
        rows = await session.execute(
            select(AuditEvent)
            .join(Workspace, Workspace.id == AuditEvent.workspace_id)
            .where(Workspace.key == ws, AuditEvent.action.startswith(prefix))
            .order_by(AuditEvent.seq)
        )
        return list(rows.scalars())


async def actions(deps: Deps, ws: str = "acme") -> list[str]:
    return [e.action for e in await events(deps, ws)]


def data_of(event: AuditEvent) -> Any:
    return json.loads(event.data)


async def posts(deps: Deps) -> list[dict[str, Any]]:
    async with deps.db.reading() as session:
        rows = await session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.kind == "slack.post")
            .order_by(OutboxMessage.id)
        )
        return [row.payload for row in rows.scalars()]


async def apply(
    deps: Deps, key: str = "invoice-sync", ws: str = "acme", **overrides: Any
) -> workflows.Applied:
    return await workflows.apply_workflow(
        deps.ctx, ws, f.workflow_doc(key, **overrides), Actor.slack(f.MEMBER)
    )


async def move(
    deps: Deps, target: Status, user: str = f.ADMIN, ref: str = "invoice-sync", **extra: Any
) -> Workflow:
    return await workflow_status.change_status(
        deps.ctx, "acme", ref, target, Actor.slack(user), **extra
    )


async def refused(expected: type[E], call: Awaitable[object], case: object) -> E:
    """Await `call` and return the `expected` error it raises; fail naming `case` otherwise."""
    try:
        await call
    except expected as exc:
        return exc
    pytest.fail(f"{case!r} was accepted, expected {expected.__name__}")


async def approved_pilot_run(deps: Deps) -> None:
    run = await f.request(deps, by=f.MEMBER)
    decided = await decisions.decide(deps.ctx, run.id, Actor.slack(f.ADMIN), Verdict.APPROVE)
    assert decided.run.state is RunState.APPROVED


# ---- applying ------------------------------------------------------------------------------


async def test_apply_creates_a_workflow_and_audits_it(deps: Deps) -> None:
    await f.governed_workspace(deps)
    applied = await apply(deps, reviewers=["U0CLIENT"], prompt="Sync invoices")
    assert (applied.created, applied.workflow.version, applied.workflow.status) == (
        True,
        1,
        Status.PILOT,
    )
    [event] = await events(deps)
    assert (event.action, event.actor, event.entity_id) == (
        "workflow.created",
        f"slack:{f.MEMBER}",
        "invoice-sync",
    )
    data = data_of(event)
    assert data["before"] is None
    assert data["version"] == 1
    assert [s["connector"] for s in data["after"]["steps"]] == ["crm", "sheets"]
    assert data["after"]["triggers"] == [{"key": "nightly", "kind": "schedule"}]
    assert data["after"]["reviewers"] == ["U0CLIENT"]


async def test_a_new_workflow_starts_as_draft_or_pilot_only(deps: Deps) -> None:
    await f.governed_workspace(deps)
    for status in ("live", "paused"):
        error = await refused(InvalidInput, apply(deps, status=status), status)
        assert error.fields == {"status": "draft or pilot"}
    assert await workflows.list_workflows(deps.ctx, "acme") == []
    assert await events(deps) == []
    for status in ("draft", "pilot"):
        created = await apply(deps, f"starts-{status}", status=status)
        assert created.workflow.status is Status(status)


async def test_status_in_a_re_applied_document_is_ignored(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await apply(deps, status="pilot")
    again = await apply(deps, status="live")
    assert again.workflow.status is Status.PILOT
    assert (again.created, again.changed) == (False, [])


async def test_a_step_with_another_workspaces_connector_is_refused(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workspace(deps, "globex")
    await f.connector(deps, "globex", "globex-erp")
    steps = [
        READ_CRM,
        {"name": "Post", "tool": "erp.post", "connector": "globex-erp", "access": "write"},
        {"name": "Ghost", "tool": "x.y", "connector": "nowhere", "access": "read"},
        WRITE_SHEETS,
    ]
    with pytest.raises(InvalidInput) as raised:
        await apply(deps, steps=steps)
    assert set(raised.value.fields) == {"steps.1.connector", "steps.2.connector"}
    assert "not a connector of this workspace" in raised.value.fields["steps.1.connector"]
    assert "'globex-erp' is not a connector of this workspace" in raised.value.message
    assert await workflows.list_workflows(deps.ctx, "acme") == []
    assert await events(deps) == []


async def test_an_existing_workflow_cannot_be_changed_to_a_foreign_connector(
    deps: Deps,
) -> None:
    await f.governed_workspace(deps)
    await f.governed_workspace(deps, "globex")
    await f.connector(deps, "globex", "globex-erp")
    await apply(deps)
    foreign = {"name": "Post", "tool": "erp.post", "connector": "globex-erp", "access": "write"}
    with pytest.raises(InvalidInput) as raised:
        await apply(deps, steps=[READ_CRM, foreign])
    assert list(raised.value.fields) == ["steps.1.connector"]
    wf = await workflows.get_workflow(deps.ctx, "acme", "invoice-sync")
    assert (wf.version, workflows.connectors_used(wf)) == (1, ["crm", "sheets"])
    assert await actions(deps) == ["workflow.created"]


async def test_re_applying_the_same_document_writes_nothing(deps: Deps) -> None:
    await f.governed_workspace(deps)
    details = {"finance_sheet": "https://docs.example.com/sheet/123", "batch": 5, "dry": False}
    await apply(deps, required_details=details, reviewers=["U0CLIENT"], production=True)
    again = await apply(deps, required_details=details, reviewers=["U0CLIENT"], production=True)
    assert (again.created, again.changed, again.workflow.version) == (False, [], 1)
    assert await actions(deps) == ["workflow.created"]


PLAN_CHANGES: list[tuple[dict[str, Any], str]] = [
    ({"steps": [{**READ_CRM, "tool": "salesforce.search"}, WRITE_SHEETS]}, "tool"),
    ({"steps": [{**READ_CRM, "connector": "sheets"}, WRITE_SHEETS]}, "connector"),
    ({"steps": [{**READ_CRM, "action": "invoices"}, WRITE_SHEETS]}, "action"),
    ({"steps": [READ_CRM, {**WRITE_SHEETS, "access": "read"}]}, "access"),
    ({"steps": [WRITE_SHEETS, READ_CRM]}, "order"),
    ({"steps": [READ_CRM]}, "fewer steps"),
]
DEFINITION_CHANGES: list[tuple[dict[str, Any], str]] = [
    ({"name": "Invoices to finance"}, "name"),
    ({"prompt": "Sync invoices"}, "prompt"),
    ({"reviewers": ["U0CLIENT"]}, "reviewers"),
    ({"required_approvals": 2}, "required_approvals"),
    ({"required_details": {"sheet": "x"}}, "required_details"),
    ({"production": True}, "production"),
    ({"steps": [{**READ_CRM, "name": "Fetch approved invoices"}, WRITE_SHEETS]}, "steps"),
    (
        {"triggers": [{"key": "nightly", "kind": "schedule"}, {"key": "hook", "kind": "webhook"}]},
        "triggers",
    ),
    ({"triggers": [{"key": "nightly", "kind": "webhook"}]}, "triggers"),
    ({"triggers": []}, "triggers"),
]


async def test_a_plan_change_bumps_the_version(deps: Deps) -> None:
    await f.governed_workspace(deps)
    for n, (change, case) in enumerate(PLAN_CHANGES):
        key = f"wf-{n}"
        await apply(deps, key)
        changed = await apply(deps, key, **change)
        assert (changed.created, changed.changed, changed.workflow.version) == (
            False,
            ["steps"],
            2,
        ), case
        again = await apply(deps, key, **change)
        assert (again.changed, again.workflow.version) == ([], 2), case
        created, event = [e for e in await events(deps) if e.entity_id == key]
        assert (created.action, event.action) == ("workflow.created", "workflow.changed"), case
        assert data_of(event)["version"] == 2
        assert event.summary == f"workflow {key} changed: steps (version 2)"


async def test_other_changes_keep_the_version(deps: Deps) -> None:
    await f.governed_workspace(deps)
    for n, (change, field) in enumerate(DEFINITION_CHANGES):
        key = f"wf-{n}"
        await apply(deps, key)
        changed = await apply(deps, key, **change)
        assert (changed.changed, changed.workflow.version) == ([field], 1), field
        _, event = [e for e in await events(deps) if e.entity_id == key]
        data = data_of(event)
        assert (event.action, data["version"]) == ("workflow.changed", 1)
        assert {k for k in data["after"] if data["before"][k] != data["after"][k]} == {field}


async def test_triggers_keep_their_state_new_ones_take_the_document_removed_ones_go(
    deps: Deps,
) -> None:
    await f.governed_workspace(deps)
    await apply(
        deps,
        triggers=[{"key": "nightly", "kind": "schedule"}, {"key": "hook", "kind": "webhook"}],
    )
    await workflows.set_trigger(
        deps.ctx, "acme", "invoice-sync", "nightly", False, Actor.slack(f.MEMBER)
    )
    applied = await apply(
        deps,
        triggers=[
            {"key": "nightly", "kind": "schedule", "enabled": True},  # may not re-enable it
            {"key": "on-close", "kind": "event", "enabled": False},
            {"key": "weekly", "kind": "schedule"},
        ],
    )
    assert applied.changed == ["triggers"]
    assert applied.workflow.version == 1
    wf = await workflows.get_workflow(deps.ctx, "acme", "invoice-sync")
    assert {t.key: (t.kind.value, t.enabled) for t in wf.triggers} == {
        "nightly": ("schedule", False),
        "on-close": ("event", False),
        "weekly": ("schedule", True),
    }
    # an enabled trigger stays on even if the document says off
    await apply(
        deps,
        triggers=[
            {"key": "nightly", "kind": "schedule"},
            {"key": "on-close", "kind": "event"},
            {"key": "weekly", "kind": "schedule", "enabled": False},
        ],
    )
    wf = await workflows.get_workflow(deps.ctx, "acme", "invoice-sync")
    assert {t.key: t.enabled for t in wf.triggers} == {
        "nightly": False,
        "on-close": False,
        "weekly": True,
    }


async def test_lookup_is_by_key_or_name_case_insensitively(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await apply(deps, name="Invoice Sync To Finance")
    for ref in (
        "invoice-sync",
        "INVOICE-SYNC",
        "invoice sync to finance",
        " Invoice SYNC to finance ",
    ):
        assert (await workflows.get_workflow(deps.ctx, "acme", ref)).key == "invoice-sync"
    with pytest.raises(NotFound, match="no workflow 'invoice'"):
        await workflows.get_workflow(deps.ctx, "acme", "invoice")


async def test_a_key_that_is_another_workflows_name_makes_a_new_workflow(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await apply(deps, "alpha", name="Beta")
    created = await apply(deps, "beta", name="Something else")
    assert created.created
    alpha = await workflows.get_workflow(deps.ctx, "acme", "alpha")
    assert alpha.name == "Beta"
    assert (await workflows.get_workflow(deps.ctx, "acme", "beta")).name == "Something else"


async def test_only_members_of_the_workspace_save_workflows(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workspace(deps, "globex", members=[("U0GLOBEXOWN", Role.OWNER)])
    for actor in (Actor.slack(STRANGER), Actor.slack("U0GLOBEXOWN")):
        call = workflows.apply_workflow(deps.ctx, "acme", f.workflow_doc(), actor)
        await refused(Forbidden, call, actor)
    assert await workflows.list_workflows(deps.ctx, "acme") == []
    applied = await workflows.apply_workflow(
        deps.ctx, "acme", f.workflow_doc(), Actor.api("engine")
    )
    assert applied.created


# ---- status --------------------------------------------------------------------------------


async def test_a_member_pauses_with_a_reason_and_the_change_is_announced(deps: Deps) -> None:
    ws = await f.governed_workspace(deps)
    await apply(deps)
    paused = await move(deps, Status.PAUSED, f.MEMBER, reason="  client asked to stop  ")
    assert (paused.status, paused.status_before_pause) == (Status.PAUSED, Status.PILOT)
    _, event = await events(deps)
    assert (event.action, event.actor, event.entity_id, event.reason) == (
        "workflow.status_changed",
        f"slack:{f.MEMBER}",
        "invoice-sync",
        "client asked to stop",
    )
    assert data_of(event) == {"before": "pilot", "after": "paused"}
    [post] = await posts(deps)
    assert post["channel"] == ws.approvals_channel
    assert post["event"] == "workflow.status_changed"
    assert post["data"]["workflow"] == "invoice-sync"
    assert (post["data"]["before"], post["data"]["after"]) == ("pilot", "paused")
    assert (post["data"]["user"], post["data"]["actor"]) == (f.MEMBER, f"slack:{f.MEMBER}")
    assert "client asked to stop" in post["data"]["reason"]


async def test_pausing_needs_a_reason(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await apply(deps)
    for reason in (None, "", "   "):
        error = await refused(
            InvalidInput, move(deps, Status.PAUSED, f.MEMBER, reason=reason), reason
        )
        assert "reason" in error.fields
    assert (await workflows.get_workflow(deps.ctx, "acme", "invoice-sync")).status is Status.PILOT
    assert await actions(deps) == ["workflow.created"]
    assert await posts(deps) == []


async def test_a_pause_named_in_a_channel_takes_the_longest_name_and_the_rest_as_reason(
    deps: Deps,
) -> None:
    """`/trame pause`'s one read: the channel's workspace, the workflow its words name (the
    longest of several names that start alike) and the person's role; of a Slack team only
    its own channels (distributed mode)."""
    ws = await f.governed_workspace(deps)
    async with deps.db.transaction() as session:  # bound to its team, as an install binds it
        await session.execute(update(Workspace).values(slack_team_id="T0CLIENT"))
    await apply(deps, "invoice", name="Invoice")
    await apply(deps, "invoice-sync", name="Invoice sync")
    member = Actor.slack(f.MEMBER)

    def named(*words: str, team: str | None = None) -> naming.Named:
        return naming.Named(ws.approvals_channel, team, words)

    paused = await workflow_status.pause_named(deps.ctx, named("INVOICE", "sync", "leak"), member)
    assert (paused.key, paused.status) == ("invoice-sync", Status.PAUSED)
    error = await refused(
        InvalidInput, workflow_status.pause_named(deps.ctx, named("invoice"), member), "no reason"
    )
    assert "/trame pause invoice <reason>" in error.message
    paused = await workflow_status.pause_named(
        deps.ctx, named("invoice", "sync?", team="T0CLIENT"), member
    )
    assert (paused.key, paused.status) == ("invoice", Status.PAUSED)
    [*_, event] = await events(deps)
    assert (event.entity_id, event.reason) == ("invoice", "sync?")
    other_team = named("invoice-sync", team="T0OTHER")
    await refused(
        ChannelNotBound, workflow_status.resume_named(deps.ctx, other_team, member), "team"
    )
    await refused(
        Forbidden, workflow_status.resume_named(deps.ctx, named("invoice"), member), "member"
    )
    stranger = Actor.slack(STRANGER)
    await refused(
        Forbidden, workflow_status.pause_named(deps.ctx, named("invoice", "x"), stranger), ""
    )
    resumed = await workflow_status.resume_named(
        deps.ctx, named("invoice-sync"), Actor.slack(f.ADMIN)
    )
    assert resumed.status is Status.PILOT
    missing = await refused(
        NotFound, workflow_status.resume_named(deps.ctx, named("invoices"), member), "unknown"
    )
    assert "no workflow 'invoices'" in missing.message


async def test_resume_returns_to_the_status_before_pause_and_needs_an_admin(
    deps: Deps,
) -> None:
    await f.governed_workspace(deps)
    for before in (Status.DRAFT, Status.PILOT, Status.LIVE):
        key = f"was-{before}"
        await apply(deps, key, status="draft" if before is Status.DRAFT else "pilot")
        if before is Status.LIVE:
            await move(deps, Status.LIVE, ref=key, sign_off=SIGN_OFF, rollback_plan=ROLLBACK)
        paused = await move(deps, Status.PAUSED, f.MEMBER, ref=key, reason="incident")
        assert paused.status_before_pause is before
        await refused(Forbidden, move(deps, before, f.MEMBER, ref=key), (before, "member"))
        for other in {Status.DRAFT, Status.PILOT, Status.LIVE} - {before}:
            call = move(deps, other, f.OWNER, ref=key, sign_off=SIGN_OFF, rollback_plan=ROLLBACK)
            error = await refused(InvalidTransition, call, (before, other))
            assert f"status it had ({before})" in error.message
        resumed = await move(deps, before, f.ADMIN, ref=key)
        assert (resumed.status, resumed.status_before_pause) == (before, None)
        last = [e for e in await events(deps) if e.entity_id == key][-1]
        assert (last.actor, data_of(last)) == (
            f"slack:{f.ADMIN}",
            {"before": "paused", "after": before.value},
        )


TRANSITIONS: list[tuple[Status, Status, str | None, type[TrameError] | None]] = [
    # from, to, the lowest role that may, what a member gets
    (Status.DRAFT, Status.PILOT, f.MEMBER, None),
    (Status.PILOT, Status.DRAFT, f.MEMBER, None),
    (Status.PILOT, Status.LIVE, f.ADMIN, Forbidden),
    (Status.LIVE, Status.PILOT, f.ADMIN, Forbidden),
    (Status.LIVE, Status.PAUSED, f.MEMBER, None),
    (Status.DRAFT, Status.PAUSED, f.MEMBER, None),
    (Status.DRAFT, Status.LIVE, None, InvalidTransition),
    (Status.PILOT, Status.PILOT, None, InvalidTransition),
    (Status.LIVE, Status.DRAFT, None, InvalidTransition),
]


async def test_who_may_move_a_workflow(deps: Deps) -> None:
    await f.governed_workspace(deps)
    extra: dict[str, Any] = {"reason": "test", "sign_off": SIGN_OFF, "rollback_plan": ROLLBACK}
    for n, (start, target, lowest, member_gets) in enumerate(TRANSITIONS):
        key, case = f"wf-{n}", (start, target)
        await apply(deps, key, status="draft" if start is Status.DRAFT else "pilot")
        if start is Status.LIVE:
            await move(deps, Status.LIVE, ref=key, **extra)
        count = len(await events(deps))
        if member_gets is not None:
            await refused(member_gets, move(deps, target, f.MEMBER, ref=key, **extra), case)
        if lowest is None:
            await refused(InvalidTransition, move(deps, target, f.OWNER, ref=key, **extra), case)
            assert (await workflows.get_workflow(deps.ctx, "acme", key)).status is start
            assert len(await events(deps)) == count, case
            continue
        moved = await move(deps, target, lowest, ref=key, **extra)
        assert moved.status is target, case
        assert len(await events(deps)) == count + 1, case


async def test_going_live_needs_a_sign_off_and_a_rollback_plan(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await apply(deps)
    with pytest.raises(InvalidInput) as raised:
        await move(deps, Status.LIVE)
    assert set(raised.value.fields) == {"signed_off_by", "sign_off_evidence", "rollback_plan"}
    with pytest.raises(InvalidInput) as raised:
        await move(
            deps, Status.LIVE, sign_off=workflow_status.SignOff("Jane", "  "), rollback_plan=" "
        )
    assert set(raised.value.fields) == {"sign_off_evidence", "rollback_plan"}
    with pytest.raises(InvalidInput) as raised:
        await move(deps, Status.LIVE, sign_off=SIGN_OFF)
    assert set(raised.value.fields) == {"rollback_plan"}
    assert await actions(deps) == ["workflow.created"]

    live = await move(deps, Status.LIVE, sign_off=SIGN_OFF, rollback_plan=ROLLBACK)
    assert (live.status, live.signed_off_by, live.sign_off_evidence) == (
        Status.LIVE,
        SIGN_OFF.by,
        SIGN_OFF.evidence,
    )
    # A free-text plan is stored structured: notes to a pause.
    assert read_stored(live.rollback_plan) == RollbackPlan(RollbackAction.PAUSE, notes=ROLLBACK)
    _, event = await events(deps)
    assert data_of(event) == {
        "before": "pilot",
        "after": "live",
        "signed_off_by": SIGN_OFF.by,
        "sign_off_evidence": SIGN_OFF.evidence,
        "rollback_plan": {"action": "pause", "triggers": [], "notes": ROLLBACK},
    }
    assert [(p["data"]["before"], p["data"]["after"]) for p in await posts(deps)] == [
        ("pilot", "live")
    ]


async def test_a_production_workflow_needs_an_approved_pilot_run_of_its_current_plan(
    deps: Deps,
) -> None:
    await f.governed_workspace(deps)
    await apply(deps, production=True)
    evidence: dict[str, Any] = {"sign_off": SIGN_OFF, "rollback_plan": ROLLBACK}
    with pytest.raises(InvalidTransition, match="approved pilot run"):
        await move(deps, Status.LIVE, **evidence)

    pending = await f.request(deps, by=f.MEMBER)
    with pytest.raises(InvalidTransition, match="approved pilot run"):
        await move(deps, Status.LIVE, **evidence)
    await decisions.decide(deps.ctx, pending.id, Actor.slack(f.ADMIN), Verdict.DECLINE, reason="no")
    with pytest.raises(InvalidTransition, match="approved pilot run"):
        await move(deps, Status.LIVE, **evidence)

    await approved_pilot_run(deps)
    # a plan change after the approval needs a new one
    await apply(deps, production=True, steps=[READ_CRM, {**WRITE_SHEETS, "access": "read"}])
    with pytest.raises(InvalidTransition, match="current plan"):
        await move(deps, Status.LIVE, **evidence)
    assert (await workflows.get_workflow(deps.ctx, "acme", "invoice-sync")).status is Status.PILOT

    await approved_pilot_run(deps)
    live = await move(deps, Status.LIVE, **evidence)
    assert (live.status, live.version) == (Status.LIVE, 2)


async def test_an_approval_before_a_non_plan_change_still_counts(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await apply(deps, production=True)
    await approved_pilot_run(deps)
    await apply(deps, production=True, name="Renamed", prompt="new prompt", reviewers=[f.OWNER])
    live = await move(deps, Status.LIVE, sign_off=SIGN_OFF, rollback_plan=ROLLBACK)
    assert (live.status, live.version) == (Status.LIVE, 1)


async def test_status_changes_are_refused_to_outsiders(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await apply(deps)
    with pytest.raises(Forbidden):
        await move(deps, Status.PAUSED, STRANGER, reason="mischief")
    with pytest.raises(Forbidden):
        await workflow_status.change_status(
            deps.ctx, "acme", "invoice-sync", Status.DRAFT, Actor.api("engine", STRANGER)
        )
    assert await actions(deps) == ["workflow.created"]


# ---- triggers ------------------------------------------------------------------------------


async def test_a_member_disables_a_trigger_an_admin_enables_it(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await apply(deps)
    off = await workflows.set_trigger(
        deps.ctx, "acme", "invoice-sync", "nightly", False, Actor.slack(f.MEMBER)
    )
    assert off.enabled is False
    with pytest.raises(Forbidden, match="admin"):
        await workflows.set_trigger(
            deps.ctx, "acme", "invoice-sync", "nightly", True, Actor.slack(f.MEMBER)
        )
    with pytest.raises(Forbidden):
        await workflows.set_trigger(
            deps.ctx, "acme", "invoice-sync", "nightly", True, Actor.api("engine")
        )
    on = await workflows.set_trigger(
        deps.ctx, "acme", "Invoice sync", "NIGHTLY", True, Actor.slack(f.ADMIN)
    )
    assert on.enabled is True
    changes = await events(deps, prefix="workflow.trigger")
    assert [(e.actor, data_of(e)) for e in changes] == [
        (f"slack:{f.MEMBER}", {"trigger": "nightly", "before": True, "after": False}),
        (f"slack:{f.ADMIN}", {"trigger": "nightly", "before": False, "after": True}),
    ]
    assert {e.action for e in changes} == {"workflow.trigger_changed"}


async def test_setting_a_trigger_to_its_state_writes_nothing(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await apply(deps)
    same = await workflows.set_trigger(
        deps.ctx, "acme", "invoice-sync", "nightly", True, Actor.slack(f.ADMIN)
    )
    assert same.enabled is True
    await workflows.set_trigger(
        deps.ctx, "acme", "invoice-sync", "nightly", False, Actor.slack(f.MEMBER)
    )
    await workflows.set_trigger(
        deps.ctx, "acme", "invoice-sync", "nightly", False, Actor.slack(f.OTHER)
    )
    assert len(await events(deps, prefix="workflow.trigger")) == 1


async def test_an_unknown_trigger_is_not_found_and_the_known_ones_are_listed(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await apply(
        deps,
        triggers=[{"key": "nightly", "kind": "schedule"}, {"key": "hook", "kind": "webhook"}],
    )
    with pytest.raises(NotFound) as raised:
        await workflows.set_trigger(
            deps.ctx, "acme", "invoice-sync", "hourly", False, Actor.slack(f.MEMBER)
        )
    assert "hourly" in raised.value.message
    assert "nightly, hook" in raised.value.message
    await apply(deps, "no-triggers", triggers=[])
    with pytest.raises(NotFound, match="it has: none"):
        await workflows.set_trigger(
            deps.ctx, "acme", "no-triggers", "nightly", False, Actor.slack(f.MEMBER)
        )


# ---- isolation -----------------------------------------------------------------------------


async def test_workflows_of_one_workspace_are_invisible_from_another(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.governed_workspace(deps, "globex")
    await apply(deps, "secret-sync", name="Secret sync")
    globex = Actor.slack(f.OWNER)  # an owner of both workspaces, acting in globex
    with pytest.raises(NotFound):
        await workflows.get_workflow(deps.ctx, "globex", "secret-sync")
    with pytest.raises(NotFound):
        await workflows.get_workflow(deps.ctx, "globex", "Secret sync")
    with pytest.raises(NotFound):
        await workflow_status.change_status(
            deps.ctx, "globex", "secret-sync", Status.PAUSED, globex, reason="x"
        )
    with pytest.raises(NotFound):
        await workflows.set_trigger(deps.ctx, "globex", "secret-sync", "nightly", False, globex)
    assert await workflows.list_workflows(deps.ctx, "globex") == []
    wf = await workflows.get_workflow(deps.ctx, "acme", "secret-sync")
    assert wf.status is Status.PILOT
    assert [t.enabled for t in wf.triggers] == [True]
    assert await events(deps, "globex") == []
    assert await posts(deps) == []


async def test_the_same_key_in_two_workspaces_is_two_workflows(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.governed_workspace(deps, "globex")
    await apply(deps)
    await apply(deps, ws="globex", name="Globex invoices")
    await move(deps, Status.PAUSED, f.MEMBER, reason="acme only")
    theirs = await workflows.get_workflow(deps.ctx, "globex", "invoice-sync")
    assert (theirs.name, theirs.status) == ("Globex invoices", Status.PILOT)

"""A pilot's record since its plan last changed, built through the services: the counts, the
decline and its reason, the connector that was unhealthy during the pilot, and a plan change
that starts the record over (a rename does not)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import DeclineCategory, Health, RunState, Verdict
from trame_bot.domain.health import Report
from trame_bot.services import connectors, decisions, pilot, runs, workflows

DECLINE_REASON = "the totals are from last month"
OTHER_TOOL = [
    {"name": "Fetch", "tool": "salesforce.query", "connector": "crm", "access": "read"},
    {"name": "Append", "tool": "sheets.update", "connector": "sheets", "access": "write"},
]


async def pilot_scenario(deps: Deps, clock: FakeClock) -> datetime:
    """A pilot (invoice-sync, version 1, saved at the returned moment) whose crm connector
    needed attention for 2 h, then: 1 run expired, 2 approved, 1 declined (wrong data, with a
    reason) and 1 still pending, 26 h after the save."""
    ctx = deps.ctx
    await f.governed_workspace(deps)
    await f.workflow(deps)
    saved = clock.now()
    clock.advance(timedelta(hours=1))
    await connectors.report_health(ctx, "acme", "crm", Report.ERROR, "token expired", f.CLI)
    clock.advance(timedelta(hours=2))
    await connectors.report_health(ctx, "acme", "crm", Report.OK, None, f.CLI)
    expiring = await f.request(deps)
    clock.advance(timedelta(hours=25))
    assert await runs.expire_due_runs(ctx) == 1
    assert (await runs.get_run(ctx, "acme", expiring.id))[0].state is RunState.EXPIRED
    for _ in range(2):
        approved = await f.request(deps)
        await decisions.decide(ctx, approved.id, Actor.slack(f.ADMIN), Verdict.APPROVE)
    declined = await f.request(deps)
    await decisions.decide(
        ctx,
        declined.id,
        Actor.slack(f.OWNER),
        Verdict.DECLINE,
        reason=DECLINE_REASON,
        category=DeclineCategory.WRONG_DATA,
    )
    await f.request(deps)
    return saved


async def test_the_record_counts_the_pilot_of_the_current_plan(
    deps: Deps, clock: FakeClock
) -> None:
    saved = await pilot_scenario(deps, clock)
    _, record = await pilot.workflow_with_record(deps.ctx, "acme", "invoice-sync")
    assert record is not None
    assert (record.version, record.since) == (1, saved)
    counts = (record.approved, len(record.declined), record.expired, record.pending)
    assert counts == (2, 1, 1, 1)
    assert (record.cancelled, record.refused) == (0, 0)
    (decline,) = record.declined
    assert (decline.by, decline.category, decline.reason) == (
        f"slack:{f.OWNER}",
        "wrong_data",
        DECLINE_REASON,
    )
    assert decline.at == clock.now()
    crm, sheets = record.connectors
    assert (crm.key, crm.health, crm.unhealthy_for, len(crm.unhealthy)) == (
        "crm",
        Health.OK,
        timedelta(hours=2),
        1,
    )
    assert crm.unhealthy[0].start == saved + timedelta(hours=1)
    assert (sheets.key, sheets.health, sheets.unhealthy) == ("sheets", Health.OK, ())

    # Renaming a step changes nothing that runs: same version, same record.
    clock.advance(timedelta(minutes=5))
    renamed = [
        {**step, "name": f"{step['name']} rows"}
        for step in f.workflow_doc().model_dump(mode="json")["steps"]
    ]
    await workflows.apply_workflow(deps.ctx, "acme", f.workflow_doc(steps=renamed), f.CLI)
    _, same = await pilot.workflow_with_record(deps.ctx, "acme", "invoice-sync")
    assert same == record

    # A new plan starts the record over; the old version's runs and the old outage drop out.
    clock.advance(timedelta(minutes=5))
    changed_at = clock.now()
    await workflows.apply_workflow(deps.ctx, "acme", f.workflow_doc(steps=OTHER_TOOL), f.CLI)
    clock.advance(timedelta(hours=1))
    await connectors.report_health(deps.ctx, "acme", "sheets", Report.DISCONNECTED, "gone", f.CLI)
    clock.advance(timedelta(minutes=30))
    _, fresh = await pilot.workflow_with_record(deps.ctx, "acme", "invoice-sync")
    assert fresh is not None
    assert (fresh.version, fresh.since) == (2, changed_at)
    assert (fresh.approved, fresh.declined, fresh.expired, fresh.pending) == (0, (), 0, 0)
    crm, sheets = fresh.connectors
    assert crm.unhealthy == ()
    assert (sheets.health, sheets.unhealthy_for) == (Health.DISCONNECTED, timedelta(minutes=30))
    assert sheets.unhealthy[0].open_at_end


async def test_a_connector_unhealthy_before_the_plan_was_saved_counts_from_the_save(
    deps: Deps, clock: FakeClock
) -> None:
    await f.governed_workspace(deps)
    await connectors.report_health(deps.ctx, "acme", "crm", Report.ERROR, "expired", f.CLI)
    clock.advance(timedelta(hours=3))
    await f.workflow(deps)
    saved = clock.now()
    clock.advance(timedelta(hours=1))
    await connectors.report_health(deps.ctx, "acme", "crm", Report.OK, None, f.CLI)
    _, record = await pilot.workflow_with_record(deps.ctx, "acme", "invoice-sync")
    assert record is not None
    (span,) = record.connectors[0].unhealthy
    assert (span.start, span.end, span.open_at_start) == (saved, saved + timedelta(hours=1), True)


async def test_no_record_outside_pilot(deps: Deps, clock: FakeClock) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps, status="draft")
    _, record = await pilot.workflow_with_record(deps.ctx, "acme", "invoice-sync")
    assert record is None


async def test_older_history_other_workflows_and_other_workspaces_change_nothing(
    deps: Deps, clock: FakeClock
) -> None:
    """The record reads every health change of the plan's connectors and every event of the
    runs of its plan: a connector's history before the save, another workflow's runs, and the
    same workflow and connector in another workspace count for nothing."""
    await f.governed_workspace(deps)
    await f.governed_workspace(deps, "globex")
    for report, error in ((Report.ERROR, "flaky"), (Report.OK, None)) * 2:
        await connectors.report_health(deps.ctx, "acme", "crm", report, error, f.CLI)
        clock.advance(timedelta(hours=1))
    await f.workflow(deps)
    await f.workflow(deps, key="other-sync")
    await f.workflow(deps, "globex")
    elsewhere = await f.request(deps, "globex")
    await decisions.decide(deps.ctx, elsewhere.id, Actor.slack(f.ADMIN), Verdict.APPROVE)
    await connectors.report_health(deps.ctx, "globex", "crm", Report.ERROR, "expired", f.CLI)
    await f.request(deps, wf="other-sync")
    await f.request(deps)
    clock.advance(timedelta(hours=1))
    _, record = await pilot.workflow_with_record(deps.ctx, "acme", "invoice-sync")
    assert record is not None
    assert (record.approved, record.pending, record.declined) == (0, 1, ())
    crm = record.connectors[0]
    assert (crm.key, crm.health, crm.unhealthy) == ("crm", Health.OK, ())

"""The incident report's numbers, from a scenario built through the services, and its refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests import factories as f
from tests.reports.scenario import DECLINE_REASON, PAUSE_REASON, incident
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.domain.audit_file import verify_lines
from trame_bot.errors import Forbidden, InvalidInput, NotFound
from trame_bot.services import reports
from trame_bot.services.reports import ReportFormat
from trame_bot.store.models import AuditEvent


async def test_the_report_of_a_workflow_counts_the_incident(deps: Deps, clock: FakeClock) -> None:
    since, until = await incident(deps, clock)
    bundle = await reports.incident_report(
        deps.ctx,
        "acme",
        "workflow:invoice-sync",
        since,
        until,
        ReportFormat.PDF,
        Actor.slack(f.OWNER),
    )
    r = bundle.report
    assert (r.entity, r.entity_name, r.workflows, r.connectors) == (
        "workflow:invoice-sync",
        "Invoice sync",
        ["invoice-sync"],
        ["crm", "sheets"],
    )
    totals = {(o.entity_type, o.key): o.total for o in r.outages}
    assert totals == {
        ("workflow", "invoice-sync"): timedelta(hours=1, minutes=50),
        ("connector", "crm"): timedelta(hours=2, minutes=12),
        ("connector", "sheets"): timedelta(0),
    }
    crm = next(o for o in r.outages if o.key == "crm")
    assert [(s.open_at_start, s.open_at_end) for s in crm.spans] == [(True, False), (False, True)]
    assert crm.spans[0].start == since
    assert (r.runs.requested, r.runs.approved, r.runs.declined) == (5, 1, 1)
    assert (r.runs.expired, r.runs.cancelled, r.runs.refused) == (1, 1, 1)
    (decline,) = r.declines
    assert (decline.by, decline.category, decline.reason) == (
        "slack:U0OWNER",
        "wrong_data",
        DECLINE_REASON,
    )
    assert [(e.action, e.actor, e.reason) for e in r.remediation] == [
        ("connector.health_changed", "cli", None),
        ("workflow.status_changed", "slack:U0OWNER", PAUSE_REASON),
        ("workflow.trigger_changed", "slack:U0OWNER", None),
        ("workflow.status_changed", "slack:U0ADMIN", None),
        ("workflow.status_changed", "slack:U0MEMBER", "rate limits again"),
    ]
    assert len(r.timeline) == 15
    assert all(since <= e.at < until for e in r.timeline)
    # The export beside it is the chain from the window's first event to its last, unbroken.
    checked = verify_lines(
        bundle.export.splitlines(keepends=True),
        after=r.anchors.first_prev_hash if r.anchors else None,
        last=r.anchors.last_hash if r.anchors else None,
    )
    assert checked.ok, checked.problem
    assert r.anchors is not None
    assert (checked.first_seq, checked.last_seq) == (r.anchors.first_seq, r.anchors.last_seq)
    assert r.timeline[0].seq == r.anchors.first_seq
    assert {e.hash for e in r.timeline} <= {
        line.split('"hash": "')[1][:64] for line in bundle.export.splitlines()
    }
    async with deps.db.reading() as session:
        recorded = (
            await session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        ).scalar_one()
    assert recorded.action == "audit.exported"
    assert '"report":true' in recorded.data
    assert (
        recorded.summary == "incident report on workflow:invoice-sync exported as pdf (15 events)"
    )


async def test_the_report_of_a_connector_covers_the_workflows_that_use_it(
    deps: Deps, clock: FakeClock
) -> None:
    since, until = await incident(deps, clock)
    bundle = await reports.incident_report(
        deps.ctx, "acme", "connector:crm", since, until, ReportFormat.MARKDOWN, f.CLI
    )
    r = bundle.report
    assert (r.workflows, r.connectors) == (["invoice-sync"], ["crm"])
    assert [o.total for o in r.outages] == [
        timedelta(hours=1, minutes=50),
        timedelta(hours=2, minutes=12),
    ]
    assert r.runs.declined == 1


async def test_bad_requests_are_refused_with_the_reason(deps: Deps, clock: FakeClock) -> None:
    since, until = await incident(deps, clock)
    ctx, owner, md = deps.ctx, Actor.slack(f.OWNER), ReportFormat.MARKDOWN
    with pytest.raises(NotFound, match="no workflow 'nope'"):
        await reports.incident_report(ctx, "acme", "workflow:nope", since, until, md, owner)
    with pytest.raises(NotFound, match="no connector 'nope'"):
        await reports.incident_report(ctx, "acme", "connector:nope", since, until, md, owner)
    with pytest.raises(InvalidInput, match="before it starts"):
        await reports.incident_report(ctx, "acme", "workflow:invoice-sync", until, since, md, owner)
    with pytest.raises(InvalidInput, match="workflow:<key> or connector:<key>"):
        await reports.incident_report(ctx, "acme", "run:abc", since, until, md, owner)
    with pytest.raises(InvalidInput, match="narrow the window"):
        await reports.incident_report(
            ctx, "acme", "workflow:invoice-sync", since, until, md, owner, max_events=10
        )
    with pytest.raises(Forbidden):
        await reports.incident_report(
            ctx, "acme", "workflow:invoice-sync", since, until, md, Actor.slack(f.MEMBER)
        )


async def test_an_empty_window_is_a_short_report(deps: Deps, clock: FakeClock) -> None:
    since, _ = await incident(deps, clock)
    bundle = await reports.incident_report(
        deps.ctx,
        "acme",
        "workflow:invoice-sync",
        since - timedelta(days=30),
        since - timedelta(days=29),
        ReportFormat.PDF,
        f.CLI,
    )
    assert bundle.report.timeline == []
    assert bundle.report.anchors is None
    assert bundle.export == ""

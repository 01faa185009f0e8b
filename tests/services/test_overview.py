"""`/trame status` with no workflow named, `/trame workflows`, `/trame connectors` and App Home:
each reads less than the full overview (which lists every workflow), and says what it says;
another workspace's workflows, runs and connectors are not counted."""

from __future__ import annotations

from collections import Counter

import pytest

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Health, Status, Verdict
from trame_bot.domain.health import Report
from trame_bot.domain.views import LINES_PER_STATUS
from trame_bot.errors import Forbidden
from trame_bot.services import connectors, decisions, overview, workflow_status
from trame_bot.store import workspaces as workspace_store

ENGINE = Actor.api("engine")


async def busy_workspace(deps: Deps, key: str) -> None:
    """Two pilots (one with two pending runs), a draft and a paused workflow; one connector of
    two in need of attention."""
    await f.governed_workspace(deps, key)
    await f.workflow(deps, key, "invoice-sync")
    await f.workflow(deps, key, "ledger-sync")
    await f.workflow(deps, key, "crm-draft", status="draft")
    await f.workflow(deps, key, "stopped")
    await workflow_status.change_status(
        deps.ctx, key, "stopped", Status.PAUSED, f.CLI, reason="client asked"
    )
    for by in (f.MEMBER, f.OTHER):
        await f.request(deps, key, "invoice-sync", by=by)
    await connectors.report_health(deps.ctx, key, "crm", Report.ERROR, "401 revoked", ENGINE)


async def test_the_summary_counts_what_the_overview_lists(deps: Deps) -> None:
    await busy_workspace(deps, "acme")
    await f.governed_workspace(deps, "globex")
    await f.workflow(deps, "globex", "invoice-sync")
    await f.request(deps, "globex", "invoice-sync")
    await connectors.report_health(deps.ctx, "globex", "sheets", Report.ERROR, "down", ENGINE)

    summary = await overview.summary(deps.ctx, "acme", Actor.slack(f.MEMBER))
    full = await overview.overview(deps.ctx, "acme", Actor.slack(f.MEMBER))

    assert summary.workflows == {
        Status.PILOT: 2,
        Status.DRAFT: 1,
        Status.PAUSED: 1,
    }
    assert summary.workflows == Counter(w.status for w in full.workflows)
    assert summary.pending_runs == len(full.pending) == 2
    assert summary.unhealthy == tuple(c.key for c in full.unhealthy) == ("crm",)
    assert summary.failed_deliveries == full.failed_deliveries
    assert (summary.audit_head, summary.audit_events) == (full.audit_head, full.audit_events)
    assert (summary.workspace_key, summary.workspace_name) == ("acme", "Acme")


async def test_the_list_shows_the_first_of_each_status_as_the_overview_does(deps: Deps) -> None:
    """`/trame workflows` reads the first `LINES_PER_STATUS` of each status by key, and each
    line is the one the full overview builds for that workflow."""
    await busy_workspace(deps, "acme")
    for n in range(LINES_PER_STATUS + 2):
        await f.workflow(deps, "acme", f"more-{n:02d}")

    listing = await overview.workflow_list(deps.ctx, "acme", Actor.slack(f.MEMBER))
    full = await overview.overview(deps.ctx, "acme", Actor.slack(f.MEMBER))

    assert listing.counts == Counter(w.status for w in full.workflows)
    assert listing.counts[Status.PILOT] == LINES_PER_STATUS + 4
    expected = [
        w
        for status in Status
        for w in [line for line in full.workflows if line.status is status][:LINES_PER_STATUS]
    ]
    assert sorted(listing.lines, key=lambda w: w.key) == sorted(expected, key=lambda w: w.key)
    assert {w.key: w.pending_runs for w in listing.lines if w.pending_runs} == {"invoice-sync": 2}
    assert next(w for w in listing.lines if w.key == "invoice-sync").unhealthy_connectors == (
        "crm",
    )


async def test_the_connector_list_is_the_overviews(deps: Deps) -> None:
    """`/trame connectors` reads the workflows' steps and nothing else of them; its lines are
    the full overview's: health, last error, and the grants no step of the workspace needs.
    Another workspace's steps and connectors change nothing."""
    mail_write = {"name": "Send", "tool": "gmail.send", "connector": "mail", "access": "write"}
    await busy_workspace(deps, "acme")
    await f.connector(deps, "acme", "mail", scopes=["read", "write"])
    await f.governed_workspace(deps, "globex")
    await f.connector(deps, "globex", "mail", scopes=["read", "write"])
    await f.workflow(deps, "globex", "mailer", steps=[mail_write])

    listed = await overview.connector_list(deps.ctx, "acme", Actor.slack(f.MEMBER))
    full = await overview.overview(deps.ctx, "acme", Actor.slack(f.MEMBER))

    assert listed == full.connectors
    assert {c.key: c.over_privileged for c in listed}["mail"] == ("write",)
    assert {c.key for c in listed if c.health is not Health.OK} == {"crm"}
    globex = await overview.connector_list(deps.ctx, "globex", Actor.slack(f.MEMBER))
    assert {c.key: c.over_privileged for c in globex}["mail"] == ()
    with pytest.raises(Forbidden, match="members of this workspace"):
        await overview.connector_list(deps.ctx, "acme", Actor.slack("U0STRANGER"))


async def test_an_empty_workspace_has_no_counts(deps: Deps) -> None:
    await f.workspace(deps, "acme")
    summary = await overview.summary(deps.ctx, "acme", Actor.slack(f.MEMBER))
    assert (summary.workflows, summary.pending_runs, summary.unhealthy) == ({}, 0, ())
    assert summary.audit_events > 0


async def test_the_summary_is_for_members(deps: Deps) -> None:
    await f.workspace(deps, "acme")
    with pytest.raises(Forbidden, match="members of this workspace"):
        await overview.summary(deps.ctx, "acme", Actor.slack("U0STRANGER"))


async def test_app_home_shows_the_list_and_the_overviews_figures(deps: Deps) -> None:
    """App Home's section of a workspace lists its workflows as `/trame workflows` does, and
    its connectors needing attention (with the grants no step needs), pending runs and chain
    head are the full overview's; another workspace's add nothing."""
    await busy_workspace(deps, "acme")
    for n in range(LINES_PER_STATUS + 2):
        await f.workflow(deps, "acme", f"more-{n:02d}")
    await f.connector(deps, "acme", "crm", scopes=["read", "write"])  # no step writes to crm
    await connectors.report_health(deps.ctx, "acme", "crm", Report.ERROR, "401 revoked", ENGINE)
    await f.governed_workspace(deps, "globex", members=())
    await f.workflow(deps, "globex", "invoice-sync")
    await f.request(deps, "globex", "invoice-sync")

    [home], total = await overview.homes_for(deps.ctx, f.MEMBER)
    full = await overview.overview(deps.ctx, "acme", Actor.slack(f.MEMBER))

    assert total == 1
    assert home.workspace_name == full.workspace_name
    assert home.listing == await overview.workflow_list(deps.ctx, "acme", Actor.slack(f.MEMBER))
    assert home.unhealthy == full.unhealthy
    assert [(c.key, c.over_privileged) for c in home.unhealthy] == [("crm", ("write",))]
    assert home.pending_runs == len(full.pending) == 2
    assert home.audit_head == full.audit_head


async def test_app_home_reads_only_the_workspaces_it_shows(deps: Deps) -> None:
    for key in ("delta", "alpha", "charlie", "bravo"):
        await f.workspace(deps, key)
    await f.workspace(deps, "echo", members=())
    shown, total = await overview.homes_for(deps.ctx, f.ADMIN, limit=3)
    assert [o.workspace_name for o in shown] == ["Alpha", "Bravo", "Charlie"]
    assert total == 4
    every, total = await overview.homes_for(deps.ctx, f.ADMIN)
    assert (len(every), total) == (4, 4)


async def test_app_home_counts_only_the_slack_teams_workspaces(deps: Deps) -> None:
    """Distributed mode: another team's workspaces are neither shown nor counted."""
    for key in ("alpha", "bravo", "charlie"):
        await f.workspace(deps, key)
    async with deps.db.transaction() as session:
        (await workspace_store.get(session, "bravo")).slack_team_id = "T0OTHER"
    shown, total = await overview.homes_for(deps.ctx, f.ADMIN, team_id="T0OTHER", limit=1)
    assert ([o.workspace_name for o in shown], total) == (["Bravo"], 1)


async def test_what_waits_for_a_person_is_what_they_may_still_approve(deps: Deps) -> None:
    """`/trame approvals` and App Home: runs naming no reviewer in the person's workspaces,
    runs naming them anywhere (a named reviewer need not be a member), never their own run,
    one they already decided, nor another workspace's or another Slack team's."""
    await f.governed_workspace(deps, "acme")
    await f.workflow(deps, "acme", "invoice-sync", required_approvals=2)
    await f.workflow(deps, "acme", "client-signed", reviewers=["U0CLIENT"])
    await f.governed_workspace(deps, "globex", members=())
    await f.workflow(deps, "globex", "invoice-sync")
    quorum = await f.request(deps, "acme", "invoice-sync", by=f.MEMBER)
    named = await f.request(deps, "acme", "client-signed", by=f.MEMBER)
    await f.request(deps, "globex", "invoice-sync", by=f.MEMBER)

    async def waiting(
        user: str, key: str | None = None, team: str | None = None
    ) -> list[tuple[str, str]]:
        found = await overview.waiting_for(deps.ctx, user, key, team_id=team)
        return [(v.workspace_key, v.run_id) for v in found]

    assert await waiting(f.ADMIN) == [("acme", quorum.id)]
    assert await waiting("U0CLIENT") == [("acme", named.id)]
    assert await waiting(f.MEMBER) == [], "their own runs"
    assert await waiting(f.ADMIN, "globex") == []
    await decisions.decide(deps.ctx, quorum.id, Actor.slack(f.ADMIN), Verdict.APPROVE)
    assert await waiting(f.ADMIN) == [], "decided, though still pending"
    assert await waiting(f.OTHER) == [("acme", quorum.id)]
    async with deps.db.transaction() as session:
        (await workspace_store.get(session, "acme")).slack_team_id = "T0ACME"
    assert await waiting(f.OTHER, team="T0OTHER") == []
    assert await waiting(f.OTHER, team="T0ACME") == [("acme", quorum.id)]

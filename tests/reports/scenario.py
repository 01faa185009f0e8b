"""An incident built through the services, the numbers a report on it must show, and the
helpers the report tests share."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import DeclineCategory, Status, Verdict
from trame_bot.domain.health import Report
from trame_bot.services import connectors, decisions, runs, workflow_status, workflows

DECLINE_REASON = "totals do not match the ledger"
PAUSE_REASON = "crm outage follow-up"
SECOND_PAUSE = "rate limits again"


async def incident(deps: Deps, clock: FakeClock) -> tuple[datetime, datetime]:
    """Returns the report's window (since, until = now). Inside it: the crm connector is
    unhealthy from before the window until 12 min into it and again for the last 2 h (2 h 12 min);
    the workflow is paused 50 min, then again for the last hour (1 h 50 min); 5 runs requested:
    1 approved, 1 declined (wrong data, with a reason), 1 expired, 1 cancelled by the pause,
    1 refused by the gate while crm was unhealthy; the nightly trigger disabled."""
    ctx, owner, admin = deps.ctx, Actor.slack(f.OWNER), Actor.slack(f.ADMIN)
    start = clock.now()

    def at(hours: float) -> None:
        clock.set(start + timedelta(hours=hours))

    await f.workspace(deps)
    await f.connector(deps, "acme", "crm")
    await f.connector(deps, "acme", "sheets", toolkit="google-sheets", scopes=["write"])
    await f.workflow(deps)
    at(1)
    await connectors.report_health(ctx, "acme", "crm", Report.ERROR, "token expired", f.CLI)
    since = start + timedelta(hours=2)
    at(2.2)
    await connectors.report_health(ctx, "acme", "crm", Report.OK, None, f.CLI)
    at(2.25)
    expiring = await f.request(deps)
    at(2.5)
    approved = await f.request(deps)
    at(2 + 40 / 60)
    await decisions.decide(ctx, approved.id, admin, Verdict.APPROVE)
    at(3)
    declined = await f.request(deps)
    at(3 + 10 / 60)
    await decisions.decide(
        ctx,
        declined.id,
        owner,
        Verdict.DECLINE,
        reason=DECLINE_REASON,
        category=DeclineCategory.WRONG_DATA,
    )
    at(26.5)
    assert await runs.expire_due_runs(ctx) == 1
    assert (await runs.get_run(ctx, "acme", expiring.id))[0].state.value == "expired"
    at(27)
    await f.request(deps)
    at(27 + 10 / 60)
    await workflow_status.change_status(
        ctx, "acme", "invoice-sync", Status.PAUSED, owner, reason=PAUSE_REASON
    )
    at(27 + 20 / 60)
    await workflows.set_trigger(ctx, "acme", "invoice-sync", "nightly", False, owner)
    at(28)
    await workflow_status.resume(ctx, "acme", "invoice-sync", admin)
    at(29)
    await connectors.report_health(ctx, "acme", "crm", Report.ERROR, "rate limited", f.CLI)
    at(29.5)
    refused = await f.request(deps)
    assert refused.state.value == "rejected", "the gate refuses runs while crm is unhealthy"
    at(30)
    await workflow_status.change_status(
        ctx, "acme", "invoice-sync", Status.PAUSED, Actor.slack(f.MEMBER), reason=SECOND_PAUSE
    )
    at(31)
    return since, clock.now()

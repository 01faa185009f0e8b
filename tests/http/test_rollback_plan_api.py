"""The API's go-live takes a structured rollback plan (and still the older free text)."""

from __future__ import annotations

from tests import factories as f
from tests.harness import Bot
from tests.http.conftest import Api
from tests.slack.test_incidents import incident_workspace
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Status
from trame_bot.domain.rollback import RollbackAction, RollbackPlan, read_stored
from trame_bot.services import workflow_status, workflows, workspaces


async def test_going_live_with_a_plan_that_disables_triggers(bot: Bot) -> None:
    await incident_workspace(bot)
    await workflow_status.change_status(bot.deps.ctx, "acme", "invoice-sync", Status.PILOT, f.CLI)
    _, token = await workspaces.create_api_key(bot.deps.ctx, "acme", "engine", Actor.cli())
    api = Api(bot.session, bot.url.removesuffix("/slack/events") + "/api/v1", token)
    body = {"status": "live", "actor": f.ADMIN, "sign_off": {"by": "Jane", "evidence": "mail"}}

    empty = {"action": "disable_triggers", "triggers": []}
    refused = await api.call(
        "POST", "/workflows/invoice-sync/status", {**body, "rollback_plan": empty}
    )
    assert refused.status == 422
    unknown = {"action": "disable_triggers", "triggers": ["hourly"]}
    refused = await api.call(
        "POST", "/workflows/invoice-sync/status", {**body, "rollback_plan": unknown}
    )
    assert (refused.status, list(refused.json["fields"])) == (422, ["rollback_triggers"])
    assert "it has: nightly" in refused.json["message"]

    plan = {"action": "disable_triggers", "triggers": ["nightly"], "notes": "call Jane"}
    live = await api.call("POST", "/workflows/invoice-sync/status", {**body, "rollback_plan": plan})
    assert (live.status, live.json["status"]) == (200, "live")
    stored = (await workflows.get_workflow(bot.deps.ctx, "acme", "invoice-sync")).rollback_plan
    assert read_stored(stored) == RollbackPlan(
        RollbackAction.DISABLE_TRIGGERS, ("nightly",), "call Jane"
    )

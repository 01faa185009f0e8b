"""`GET /workflows/{key}` shows a pilot's record while the workflow is in pilot, and every
workflow read shows the rollback plan signed off at go-live."""

from __future__ import annotations

from tests import factories as f
from tests.harness import Bot
from tests.http.conftest import Api
from tests.services.test_pilot import DECLINE_REASON, pilot_scenario
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.services import workspaces


async def test_the_workflow_read_shows_the_pilot_record(bot: Bot, clock: FakeClock) -> None:
    saved = await pilot_scenario(bot.deps, clock)
    _, token = await workspaces.create_api_key(bot.deps.ctx, "acme", "engine", Actor.cli())
    api = Api(bot.session, bot.url.removesuffix("/slack/events") + "/api/v1", token)

    read = await api.call("GET", "/workflows/invoice-sync")
    assert read.status == 200
    pilot = read.json["pilot"]
    assert (pilot["version"], pilot["since"]) == (1, saved.isoformat().replace("+00:00", "Z"))
    counts = {k: pilot[k] for k in ("approved", "expired", "pending", "cancelled", "refused")}
    assert counts == {"approved": 2, "expired": 1, "pending": 1, "cancelled": 0, "refused": 0}
    (declined,) = pilot["declined"]
    assert (declined["by"], declined["category"], declined["reason"]) == (
        f"slack:{f.OWNER}",
        "wrong_data",
        DECLINE_REASON,
    )
    crm, sheets = pilot["connectors"]
    assert (crm["key"], crm["health"], crm["unhealthy_seconds"]) == ("crm", "ok", 7200)
    assert [s["ongoing"] for s in crm["unhealthy"]] == [False]
    assert (sheets["key"], sheets["unhealthy_seconds"], sheets["unhealthy"]) == ("sheets", 0, [])
    assert read.json["rollback_plan"] is None

    listed = await api.call("GET", "/workflows")
    assert "pilot" not in listed.json["items"][0], "the list stays cheap: no records"

    plan = {"action": "disable_triggers", "triggers": ["nightly"], "notes": "call Jane"}
    live = await api.call(
        "POST",
        "/workflows/invoice-sync/status",
        {
            "status": "live",
            "actor": f.ADMIN,
            "sign_off": {"by": "Jane", "evidence": "mail"},
            "rollback_plan": plan,
        },
    )
    assert live.status == 200
    read = await api.call("GET", "/workflows/invoice-sync")
    assert read.json["pilot"] is None, "no pilot record once live"
    assert read.json["rollback_plan"] == {**plan, "structured": True}


async def test_a_free_text_rollback_plan_reads_as_notes_to_a_pause(api: Api) -> None:
    await api.call(
        "POST",
        "/workflows/invoice-sync/status",
        {
            "status": "live",
            "actor": f.ADMIN,
            "sign_off": {"by": "Jane", "evidence": "mail"},
            "rollback_plan": "pause it and call Jane",
        },
    )
    read = await api.call("GET", "/workflows/invoice-sync")
    assert read.json["rollback_plan"] == {
        "action": "pause",
        "triggers": [],
        "notes": "pause it and call Jane",
        "structured": True,
    }

"""The connector alert's buttons through the API (`/alerts/{id}/…`, `/connectors/{key}/…`): the
same services as Slack's, the same refusals, and the alert's Slack message updated in place."""

from __future__ import annotations

import json

import pytest

from tests import factories as f
from tests.harness import Bot
from tests.http.conftest import Api
from tests.slack.test_incidents import (
    REASON,
    button,
    incident_workspace,
    posted,
    report,
    status_events,
    statuses,
    updates,
)
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Status
from trame_bot.domain.health import Report
from trame_bot.sandbox.block_kit import block_errors
from trame_bot.services import workspaces
from trame_bot.slack.ids import Action


@pytest.fixture
async def api(bot: Bot) -> Api:
    """Acme's incident workspace (crm used by a live and a pilot workflow) and its key."""
    await incident_workspace(bot)
    _, token = await workspaces.create_api_key(bot.deps.ctx, "acme", "engine", Actor.cli())
    return Api(bot.session, bot.url.removesuffix("/slack/events") + "/api/v1", token)


async def test_pause_by_connector_then_resume_by_alert_id_updates_the_slack_messages(
    api: Api, bot: Bot
) -> None:
    ops = (await workspaces.get_workspace(bot.deps.ctx, "acme")).alerts_channel
    await report(bot, Report.ERROR, error="401 token revoked")
    alert = posted(bot, ops, "needs attention")

    listed = await api.call("GET", "/alerts", params={"connector": "crm"})
    assert listed.status == 200, listed.text
    (outage,) = listed.json["items"]
    assert outage["kind"] == "needs_attention"
    assert outage["error"] == "401 token revoked"
    assert [w["key"] for w in outage["workflows"]] == ["invoice-sync", "lead-digest"]
    assert outage["acted_by"] is None

    # No actor: the key acts as a member, who may pull the brake.
    paused = await api.call("POST", "/connectors/crm/pause-affected")
    assert paused.status == 200, paused.text
    body = paused.json
    assert body["action"] == "paused"
    assert body["workflows"] == [
        {"key": "invoice-sync", "name": "Invoice sync", "status": "live"},
        {"key": "lead-digest", "name": "Lead digest", "status": "pilot"},
    ]
    assert body["connector_health"] == "needs_attention"
    assert body["alert"]["id"] == outage["id"]
    assert body["alert"]["acted_by"] == "api:engine"
    assert sorted(await status_events(bot, REASON)) == ["invoice-sync", "lead-digest"]
    assert (await statuses(bot))["invoice-sync"] is Status.PAUSED

    # The alert's message is updated in place as after a click, naming the key.
    await bot.delivered()
    (updated,) = updates(bot, alert.ts)
    assert block_errors(updated) == []
    assert button(updated, Action.PAUSE_AFFECTED) is None
    assert "api:engine paused Invoice sync, Lead digest" in json.dumps(updated)

    again = await api.call("POST", f"/alerts/{outage['id']}/pause-affected", {"actor": f.OTHER})
    assert again.status == 409
    assert again.json["error"] == "conflict"
    assert "already done: paused by api:engine at " in again.json["message"]

    await report(bot, Report.OK)
    notice = posted(bot, ops, "healthy again")
    refused = await api.call("POST", f"/alerts/{outage['id']}/resume", {"actor": f.MEMBER})
    assert refused.status == 403
    assert "admin" in refused.json["message"]
    without_actor = await api.call("POST", "/connectors/crm/resume")
    assert without_actor.status == 403

    # The outage alert's id names the outage: its recovery notice records the resume.
    resumed = await api.call("POST", f"/alerts/{outage['id']}/resume", {"actor": f.ADMIN})
    assert resumed.status == 200, resumed.text
    assert resumed.json["action"] == "resumed"
    assert resumed.json["alert"]["kind"] == "recovered"
    assert resumed.json["alert"]["outage_id"] == outage["id"]
    assert resumed.json["alert"]["acted_by"] == f.ADMIN
    assert [w["status"] for w in resumed.json["workflows"]] == ["live", "pilot"]
    assert await statuses(bot) == {
        "invoice-sync": Status.LIVE,
        "lead-digest": Status.PILOT,
        "sheet-only": Status.PILOT,
    }
    await bot.delivered()
    (notice_now,) = updates(bot, notice.ts)
    assert button(notice_now, Action.RESUME_PAUSED) is None
    assert f"<@{f.ADMIN}> resumed Invoice sync, Lead digest" in json.dumps(notice_now)

    twice = await api.call(
        "POST", f"/alerts/{resumed.json['alert']['id']}/resume", {"actor": f.OWNER}
    )
    assert twice.status == 409
    assert f"already done: resumed by {f.ADMIN} at " in twice.json["message"]


async def test_resuming_while_the_connector_is_unhealthy_is_refused_with_its_error(
    api: Api, bot: Bot
) -> None:
    await report(bot, Report.ERROR, error="401 token revoked")
    assert (await api.call("POST", "/connectors/crm/pause-affected")).status == 200
    still_down = await api.call("POST", "/connectors/crm/resume", {"actor": f.ADMIN})
    assert still_down.status == 409
    assert "crm is needs_attention again (401 token revoked)" in still_down.json["message"]

    await report(bot, Report.OK)
    await report(bot, Report.ERROR, error="500 upstream down")  # a second outage
    by_connector = await api.call("POST", "/connectors/crm/resume", {"actor": f.ADMIN})
    assert by_connector.status == 409
    assert "(500 upstream down): resume once it is healthy" in by_connector.json["message"]
    notice = (await api.call("GET", "/alerts", params={"connector": "crm"})).json["items"][1]
    assert notice["kind"] == "recovered"
    assert [w["key"] for w in notice["to_resume"]] == ["invoice-sync", "lead-digest"]
    by_notice = await api.call("POST", f"/alerts/{notice['id']}/resume", {"actor": f.ADMIN})
    assert by_notice.status == 409
    assert "500 upstream down" in by_notice.json["message"]
    assert (await statuses(bot))["invoice-sync"] is Status.PAUSED


async def test_unknown_and_other_workspaces_alerts_are_not_found(api: Api, bot: Bot) -> None:
    await incident_workspace(bot, "globex")
    await report(bot, Report.ERROR, key="globex", error="401 token revoked")
    (theirs,) = (await workspaces_alerts(bot, "globex"))["items"]

    for path in (
        f"/alerts/{theirs['id']}/pause-affected",
        f"/alerts/{theirs['id']}/resume",
        "/alerts/999999/pause-affected",
        "/alerts/99999999999999999999/pause-affected",
        "/alerts/abc/resume",
        "/connectors/nope/pause-affected",
        "/connectors/nope/resume",
    ):
        answer = await api.call("POST", path, {"actor": f.OWNER})
        assert answer.status == 404, (path, answer.text)
        assert answer.json["error"] == "not_found"
    # acme's crm has had no alert yet: a clear 404, not someone else's.
    quiet = await api.call("POST", "/connectors/crm/pause-affected")
    assert quiet.status == 404
    assert "has had no “needs attention” alert" in quiet.json["message"]
    assert (await api.call("GET", "/alerts")).json == {"items": []}
    assert (await api.call("GET", "/alerts", params={"connector": "nope"})).status == 404
    assert (await statuses(bot, "globex"))["invoice-sync"] is Status.LIVE


async def test_a_malformed_body_is_refused_and_changes_nothing(api: Api, bot: Bot) -> None:
    await report(bot, Report.ERROR, error="401 token revoked")
    for raw in (b"{", b'{"actor": ""}', b'{"actor": "U0MEMBER", "why": 1}'):
        answer = await api.call("POST", "/connectors/crm/pause-affected", raw=raw)
        assert answer.status in (400, 422), answer.text
    assert await status_events(bot, REASON) == []


async def workspaces_alerts(bot: Bot, key: str) -> dict[str, object]:
    """Another workspace's alerts, read through its own key."""
    _, token = await workspaces.create_api_key(bot.deps.ctx, key, "theirs", Actor.cli())
    theirs = Api(bot.session, bot.url.removesuffix("/slack/events") + "/api/v1", token)
    answer = await theirs.call("GET", "/alerts")
    assert answer.status == 200
    return dict(answer.json)

"""The engine's API through a real server: auth, isolation, documents, runs, long-poll, verify."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pytest
from sqlalchemy import func, select

from tests import factories as f
from tests.harness import Bot
from tests.http.conftest import Api
from trame_bot.domain.actors import Actor
from trame_bot.services import workspaces
from trame_bot.slack.ids import Action
from trame_bot.store.models import AuditEvent, Run

WORKFLOW = {
    "key": "lead-digest",
    "name": "Lead digest",
    "steps": [{"name": "Fetch", "tool": "salesforce.query", "connector": "crm", "access": "read"}],
    "triggers": [{"key": "morning", "kind": "schedule"}],
}


async def rows(bot: Bot) -> tuple[int, int]:
    async with bot.deps.db.reading() as session:
        events = await session.scalar(select(func.count()).select_from(AuditEvent))
        runs = await session.scalar(select(func.count()).select_from(Run))
    return int(events or 0), int(runs or 0)


@pytest.mark.parametrize("token", [None, "", "trame_not-a-real-key", "Bearer"])
async def test_requests_without_a_valid_key_are_401_and_write_nothing(
    api: Api, bot: Bot, token: str | None
) -> None:
    before = await rows(bot)
    # A run request checks the key in its read of the workflow (`authenticate`): 401 still
    # outranks what else is wrong with the request.
    for method, path, body, raw in [
        ("GET", "/workflows", None, None),
        ("POST", "/workflows/invoice-sync/runs", {}, None),
        ("POST", "/workflows/no-such-workflow/runs", {}, None),
        ("POST", "/workflows/invoice-sync/runs", None, b"{not json"),
        ("POST", "/workflows/invoice-sync/runs", {"source": "nowhere"}, None),
        ("POST", "/workflows/%00/runs", {}, None),
        ("PUT", "/workflows/lead-digest", WORKFLOW, None),
    ]:
        reply = await api.as_(token).call(method, path, body, raw=raw)
        assert reply.status == 401, (path, body, raw, reply.text)
        assert reply.json["error"] == "unauthorized"
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert await rows(bot) == before


async def test_a_revoked_key_stops_working(api: Api, bot: Bot) -> None:
    assert (await api.call("GET", "/workflows")).status == 200
    assert (await api.call("POST", "/workflows/invoice-sync/runs", {})).status == 201
    await workspaces.revoke_api_key(bot.deps.ctx, "acme", "engine", Actor.cli())
    assert (await api.call("GET", "/workflows")).status == 401
    before = await rows(bot)
    refused = await api.call("POST", "/workflows/invoice-sync/runs", {})
    assert (refused.status, refused.json["error"]) == (401, "unauthorized")
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert await rows(bot) == before


async def test_a_run_request_is_authored_by_the_key_that_asked(api: Api, bot: Bot) -> None:
    """The key's name comes from the run request's one read: it signs the audit event."""
    _, other = await workspaces.create_api_key(bot.deps.ctx, "acme", "scheduler", Actor.cli())
    for token, name in ((api.token, "engine"), (other, "scheduler")):
        reply = await api.as_(token).call("POST", "/workflows/Invoice sync/runs", {})
        assert reply.status == 201, reply.text
        async with bot.deps.db.reading() as session:
            actor = await session.scalar(
                select(AuditEvent.actor)
                .where(AuditEvent.entity_id == reply.json["id"])
                .order_by(AuditEvent.seq)
            )
        assert actor == f"api:{name}"
    missing = await api.call("POST", "/workflows/no-such-workflow/runs", {})
    assert (missing.status, missing.json["error"]) == (404, "not_found")


async def test_another_workspaces_key_sees_nothing_of_this_one(api: Api, bot: Bot) -> None:
    await f.workspace(bot.deps, "globex")
    _, token = await workspaces.create_api_key(bot.deps.ctx, "globex", "engine", Actor.cli())
    run = (await api.call("POST", "/workflows/invoice-sync/runs", {})).json
    before = await rows(bot)
    other = api.as_(token)
    for method, path, body in [
        ("GET", "/workflows/invoice-sync", None),
        ("POST", "/workflows/invoice-sync/runs", {}),
        (
            "POST",
            "/workflows/invoice-sync/status",
            {"status": "paused", "actor": f.OWNER, "reason": "x"},
        ),
        ("GET", f"/runs/{run['id']}", None),
        ("POST", f"/runs/{run['id']}/verify", {"fingerprint": run["fingerprint"]}),
        ("POST", "/connectors/crm/health", {"status": "error"}),
    ]:
        reply = await other.call(method, path, body)
        assert reply.status == 404, (path, reply.text)
    assert (await other.call("GET", "/workflows")).json == {"items": []}
    assert await rows(bot) == before


async def test_workflows_are_created_updated_and_validated(api: Api) -> None:
    created = await api.call("PUT", "/workflows/lead-digest", WORKFLOW)
    assert created.status == 201
    assert created.json["status"] == "draft"
    assert created.json["version"] == 1
    same = await api.call("PUT", "/workflows/lead-digest", WORKFLOW)
    assert (same.status, same.json["version"]) == (200, 1)
    changed = await api.call(
        "PUT",
        "/workflows/lead-digest",
        {**WORKFLOW, "steps": [{**WORKFLOW["steps"][0], "connector": "sheets", "access": "write"}]},
    )  # type: ignore[dict-item]
    assert changed.json["version"] == 2
    listed = await api.call("GET", "/workflows")
    assert sorted(w["key"] for w in listed.json["items"]) == ["invoice-sync", "lead-digest"]
    mismatch = await api.call("PUT", "/workflows/other", WORKFLOW)
    assert (mismatch.status, mismatch.json["fields"]) == (422, {"key": "same as in the URL"})
    invalid = await api.call(
        "PUT", "/workflows/lead-digest", {**WORKFLOW, "steps": [], "surprise": 1}
    )
    assert invalid.status == 422
    assert {"steps", "surprise"} <= set(invalid.json["fields"])
    foreign = await api.call(
        "PUT",
        "/workflows/lead-digest",
        {**WORKFLOW, "steps": [{**WORKFLOW["steps"][0], "connector": "nope"}]},
    )  # type: ignore[dict-item]
    assert (foreign.status, list(foreign.json["fields"])) == (422, ["steps.0.connector"])
    not_json = await api.call("PUT", "/workflows/lead-digest", raw=b"{not json")
    assert (not_json.status, not_json.json["error"]) == (400, "malformed")
    huge = await api.call(
        "PUT", "/workflows/lead-digest", raw=b'{"key": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    )
    assert (huge.status, huge.json["error"]) == (413, "too_large")
    unknown = await api.call("GET", "/workflows/ghost")
    assert (unknown.status, unknown.json["error"]) == (404, "not_found")


async def test_connectors_and_health_reports(api: Api) -> None:
    doc = {"key": "mail", "toolkit": "gmail", "account": "ops@acme.example", "scopes": ["send"]}
    assert (await api.call("PUT", "/connectors/mail", doc)).status == 201
    report = await api.call(
        "POST", "/connectors/mail/health", {"status": "error", "error": "token expired"}
    )
    assert (report.json["health"], report.json["last_error"]) == (
        "needs_attention",
        "token expired",
    )
    listed = await api.call("GET", "/connectors")
    assert {c["key"]: c["health"] for c in listed.json["items"]}["mail"] == "needs_attention"
    assert (await api.call("POST", "/connectors/mail/health", {"status": "ok"})).json[
        "health"
    ] == "ok"
    # A toolkit longer than its column is refused with the field named, on both databases
    # (PostgreSQL's varchar would refuse the write; SQLite would store it).
    too_long = await api.call("PUT", "/connectors/mail", {**doc, "toolkit": "k" * 101})
    assert (too_long.status, list(too_long.json["fields"])) == (422, ["toolkit"])
    longest = await api.call("PUT", "/connectors/mail", {**doc, "toolkit": "k" * 100})
    assert longest.status == 200


async def test_run_requests_answer_with_the_gate_and_are_idempotent(api: Api) -> None:
    body = {
        "source": "manual",
        "requested_by": f.MEMBER,
        "idempotency_key": "k-1",
        "details": {"batch": "1"},
    }
    first = await api.call("POST", "/workflows/invoice-sync/runs", body)
    assert first.status == 201
    assert (first.json["state"], first.json["approvals"]) == (
        "pending",
        {"required": 1, "received": 0},
    )
    assert len(first.json["fingerprint"]) == 64
    again = await api.call("POST", "/workflows/invoice-sync/runs", body)
    assert (again.status, again.json["id"]) == (200, first.json["id"])
    reused = await api.call(
        "POST", "/workflows/invoice-sync/runs", {**body, "details": {"batch": "2"}}
    )
    assert (reused.status, reused.json["error"]) == (409, "conflict")
    paused = await api.call(
        "POST",
        "/workflows/invoice-sync/status",
        {"status": "paused", "actor": f.MEMBER, "reason": "stop"},
    )
    assert paused.json["status"] == "paused"
    refused = await api.call(
        "POST", "/workflows/invoice-sync/runs", {"source": "trigger", "trigger": "nightly"}
    )
    assert refused.json["state"] == "rejected"
    assert "paused" in refused.json["reason"]
    cancelled = await api.call("GET", f"/runs/{first.json['id']}")
    assert cancelled.json["state"] == "cancelled"


async def test_status_changes_apply_the_actors_role(api: Api) -> None:
    denied = await api.call(
        "POST", "/workflows/invoice-sync/status", {"status": "live", "actor": f.MEMBER}
    )
    assert (denied.status, denied.json["error"]) == (403, "forbidden")
    missing = await api.call(
        "POST", "/workflows/invoice-sync/status", {"status": "live", "actor": f.ADMIN}
    )
    assert missing.status == 422
    assert set(missing.json["fields"]) == {"signed_off_by", "sign_off_evidence", "rollback_plan"}
    live = await api.call(
        "POST",
        "/workflows/invoice-sync/status",
        {
            "status": "live",
            "actor": f.ADMIN,
            "sign_off": {"by": "Jane", "evidence": "mail"},
            "rollback_plan": "pause",
        },
    )
    assert (live.status, live.json["status"]) == (200, "live")
    draft = await api.call(
        "POST", "/workflows/invoice-sync/status", {"status": "draft", "actor": f.OWNER}
    )
    assert (draft.status, draft.json["error"]) == (409, "invalid_transition")
    trigger = await api.call(
        "PUT", "/workflows/invoice-sync/triggers/nightly", {"enabled": False, "actor": f.MEMBER}
    )
    assert trigger.json["triggers"] == [{"key": "nightly", "kind": "schedule", "enabled": False}]
    enable = await api.call(
        "PUT", "/workflows/invoice-sync/triggers/nightly", {"enabled": True, "actor": f.MEMBER}
    )
    assert enable.status == 403


async def test_long_poll_is_woken_by_a_slack_decision(api: Api, bot: Bot) -> None:
    run = (await api.call("POST", "/workflows/invoice-sync/runs", {"requested_by": f.MEMBER})).json
    quick = await api.call("GET", f"/runs/{run['id']}", params={"wait": "0.2"})
    assert quick.json["state"] == "pending"
    await bot.delivered()
    waiting = asyncio.create_task(api.call("GET", f"/runs/{run['id']}", params={"wait": "20"}))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    started = asyncio.get_running_loop().time()
    channel = (await workspaces.get_workspace(bot.deps.ctx, "acme")).approvals_channel
    await bot.click(Action.APPROVE, run["id"], user=f.ADMIN, channel=channel)
    answer = await asyncio.wait_for(waiting, timeout=10)
    assert answer.json["state"] == "approved"
    assert answer.json["decisions"][0]["user"] == f.ADMIN
    assert asyncio.get_running_loop().time() - started < 5
    bad = await api.call("GET", f"/runs/{run['id']}", params={"wait": "31"})
    assert (bad.status, bad.json["fields"]) == (422, {"wait": "0–30"})


async def test_verify_checks_state_and_fingerprint(api: Api, bot: Bot) -> None:
    run = (await api.call("POST", "/workflows/invoice-sync/runs", {"requested_by": f.MEMBER})).json
    pending = await api.call(
        "POST", f"/runs/{run['id']}/verify", {"fingerprint": run["fingerprint"]}
    )
    assert (pending.status, pending.json["error"]) == (409, "conflict")
    assert "not approved" in pending.json["message"]
    channel = (await workspaces.get_workspace(bot.deps.ctx, "acme")).approvals_channel
    await bot.click(Action.APPROVE, run["id"], user=f.ADMIN, channel=channel)
    assert await bot.settles(run["id"]) == "approved"  # a StrEnum equals its value
    good = await api.call("POST", f"/runs/{run['id']}/verify", {"fingerprint": run["fingerprint"]})
    assert (good.status, good.json["verified"]) == (200, True)
    other = await api.call("POST", f"/runs/{run['id']}/verify", {"fingerprint": "0" * 64})
    assert other.status == 409
    assert "plan differs" in other.json["message"]


async def test_audit_export_streams_csv_and_jsonl(api: Api) -> None:
    jsonl = await api.call("GET", "/audit", params={"entity": "workflow:invoice-sync"})
    assert jsonl.status == 200
    assert jsonl.headers["Content-Type"].startswith("application/x-ndjson")
    assert [json.loads(line)["action"] for line in jsonl.text.splitlines()] == ["workflow.created"]
    as_csv = await api.call("GET", "/audit", params={"format": "csv", "since": "2000-01-01"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert rows[0]["action"] == "workspace.created"
    assert (await api.call("GET", "/audit", params={"format": "xml"})).status == 422
    assert (await api.call("GET", "/audit", params={"entity": "nonsense"})).status == 422


async def test_openapi_document_is_served_without_a_key(api: Api) -> None:
    doc = await api.as_(None).call("GET", "/openapi.json")
    assert doc.status == 200
    spec = doc.json
    assert spec["openapi"].startswith("3.1")
    operations = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    assert ("POST", "/workflows/{key}/runs") in operations
    assert ("GET", "/audit") in operations
    assert ("GET", "/audit/report") in operations
    assert ("POST", "/connectors/{key}/pause-affected") in operations
    assert ("POST", "/alerts/{id}/resume") in operations
    assert len(operations) == 18
    for name in ("WorkflowDoc", "RunRequestDoc", "RunOut", "ErrorOut"):
        assert name in spec["components"]["schemas"]

"""The engine's API (`/api/v1`): JSON in and out, a workspace API key per request, the same
services as Slack and the CLI. A key of one workspace sees nothing of another: every lookup is
scoped to the key's workspace, so foreign ids are simply not found."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel

from trame_bot import json_text
from trame_bot.documents import ConnectorDoc, RunRequestDoc, WorkflowDoc, parse
from trame_bot.domain.actors import Actor
from trame_bot.domain.alerts import MAX_ALERT_ID, AlertTarget
from trame_bot.domain.enums import Role
from trame_bot.domain.health import Report
from trame_bot.domain.rollback import plan_from
from trame_bot.domain.values import parse_moment
from trame_bot.errors import InvalidInput
from trame_bot.http import openapi
from trame_bot.http.api_middlewares import (
    CTX,
    KEY_HASH,
    KEY_NAME,
    KEYED,
    MIDDLEWARES,
    PULSE,
    WORKSPACE,
    MalformedBody,
)
from trame_bot.http.pulse import Pulse
from trame_bot.http.schemas import (
    ActedOut,
    AlertActionIn,
    AlertList,
    ConnectorList,
    HealthReportIn,
    StatusChangeIn,
    TriggerIn,
    VerifiedOut,
    VerifyIn,
    WorkflowList,
)
from trame_bot.http.views import (
    alert_out,
    connector_list_item,
    connector_out,
    run_out,
    workflow_detail_out,
    workflow_out,
)
from trame_bot.reports.render import rendered
from trame_bot.services import (
    alerts,
    audit,
    connectors,
    pilot,
    reports,
    run_requests,
    runs,
    workflow_status,
    workflows,
)
from trame_bot.services import scopes as scope_service
from trame_bot.services.context import Context
from trame_bot.store.audit import AuditFilter

MAX_WAIT = 30.0

M = TypeVar("M", bound=BaseModel)


async def body_of(request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        data = json_text.loads(raw or b"null")
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than any document
        raise MalformedBody("the body is not valid JSON") from None
    return parse(model, data)


def ok(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)


def ctx_of(request: web.Request) -> Context:
    return request.app[CTX]


def engine(request: web.Request, user: str | None = None) -> Actor:
    return Actor.api(request[KEY_NAME], user)


# ---- workflows -----------------------------------------------------------------------------


async def put_workflow(request: web.Request) -> web.Response:
    doc = await body_of(request, WorkflowDoc)
    if doc.key != request.match_info["key"].lower():
        raise InvalidInput("the body's key must match the URL's", {"key": "same as in the URL"})
    applied = await workflows.apply_workflow(
        ctx_of(request), request[WORKSPACE], doc, engine(request)
    )
    workflow = await workflows.get_workflow(ctx_of(request), request[WORKSPACE], doc.key)
    return ok(workflow_out(workflow), 201 if applied.created else 200)


async def list_workflows(request: web.Request) -> web.Response:
    found = await workflows.list_workflows(ctx_of(request), request[WORKSPACE])
    return ok(WorkflowList(items=[workflow_out(w) for w in found]))


async def get_workflow(request: web.Request) -> web.Response:
    found, record = await pilot.workflow_with_record(
        ctx_of(request), request[WORKSPACE], request.match_info["key"]
    )
    return ok(workflow_detail_out(found, record))


async def change_status(request: web.Request) -> web.Response:
    body = await body_of(request, StatusChangeIn)
    sign_off = (
        workflow_status.SignOff(body.sign_off.by, body.sign_off.evidence) if body.sign_off else None
    )
    await workflow_status.change_status(
        ctx_of(request),
        request[WORKSPACE],
        request.match_info["key"],
        body.status,
        engine(request, body.actor),
        reason=body.reason,
        sign_off=sign_off,
        rollback_plan=(
            body.rollback_plan
            if isinstance(body.rollback_plan, str | None)
            else plan_from(
                body.rollback_plan.action,
                getattr(body.rollback_plan, "triggers", ()),
                body.rollback_plan.notes,
            )
        ),
    )
    found = await workflows.get_workflow(
        ctx_of(request), request[WORKSPACE], request.match_info["key"]
    )
    return ok(workflow_out(found))


async def put_trigger(request: web.Request) -> web.Response:
    body = await body_of(request, TriggerIn)
    await workflows.set_trigger(
        ctx_of(request),
        request[WORKSPACE],
        request.match_info["key"],
        request.match_info["trigger"],
        body.enabled,
        engine(request, body.actor),
    )
    found = await workflows.get_workflow(
        ctx_of(request), request[WORKSPACE], request.match_info["key"]
    )
    return ok(workflow_out(found))


# ---- connectors ----------------------------------------------------------------------------


async def put_connector(request: web.Request) -> web.Response:
    doc = await body_of(request, ConnectorDoc)
    if doc.key != request.match_info["key"].lower():
        raise InvalidInput("the body's key must match the URL's", {"key": "same as in the URL"})
    applied = await connectors.apply_connector(
        ctx_of(request), request[WORKSPACE], doc, engine(request)
    )
    return ok(connector_out(applied.connector), 201 if applied.created else 200)


async def list_connectors(request: web.Request) -> web.Response:
    found = await scope_service.list_connectors(ctx_of(request), request[WORKSPACE])
    return ok(ConnectorList(items=[connector_list_item(g) for g in found]))


async def report_health(request: web.Request) -> web.Response:
    body = await body_of(request, HealthReportIn)
    connector = await connectors.report_health(
        ctx_of(request),
        request[WORKSPACE],
        request.match_info["key"],
        Report(body.status),
        body.error,
        engine(request),
    )
    return ok(connector_out(connector))


# ---- connector alerts ----------------------------------------------------------------------


async def list_alerts(request: web.Request) -> web.Response:
    found = await alerts.list_alerts(
        ctx_of(request), request[WORKSPACE], request.query.get("connector") or None
    )
    return ok(AlertList(items=[alert_out(view) for view in found]))


def _alert_id(request: web.Request) -> AlertTarget:
    raw = request.match_info["id"]
    number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 10 else 0
    # Anything but an id in range names no alert: 404, as for an unknown id.
    return AlertTarget(alert_id=number if 0 < number <= MAX_ALERT_ID else 0)


def _connector(request: web.Request) -> AlertTarget:
    return AlertTarget(connector=request.match_info["key"].strip().lower())


async def _act_on_alert(
    request: web.Request,
    target: AlertTarget,
    act: Callable[[Context, str, AlertTarget, Actor], Awaitable[alerts.Acted]],
    action: str,
) -> web.Response:
    """The alert buttons' services, named by alert id or by connector (its latest outage)."""
    raw = await request.read()
    # No body is fine: the key then acts as a member.
    body = await body_of(request, AlertActionIn) if raw.strip() else AlertActionIn()
    ctx = ctx_of(request)
    done = await act(ctx, request[WORKSPACE], target, engine(request, body.actor))
    view = await alerts.workspace_alert(ctx, request[WORKSPACE], done.alert_id)
    acted = alert_out(view)
    return ok(
        ActedOut(
            action="paused" if action == "pause" else "resumed",
            workflows=acted.acted_on,
            connector_health=done.connector_health,
            alert=acted,
        )
    )


async def pause_affected_by_id(request: web.Request) -> web.Response:
    return await _act_on_alert(request, _alert_id(request), alerts.pause_affected_at, "pause")


async def resume_by_id(request: web.Request) -> web.Response:
    return await _act_on_alert(request, _alert_id(request), alerts.resume_at, "resume")


async def pause_affected_by_connector(request: web.Request) -> web.Response:
    return await _act_on_alert(request, _connector(request), alerts.pause_affected_at, "pause")


async def resume_by_connector(request: web.Request) -> web.Response:
    return await _act_on_alert(request, _connector(request), alerts.resume_at, "resume")


# ---- runs ----------------------------------------------------------------------------------


async def request_run(request: web.Request) -> web.Response:
    """The engine asks before every run: the key is checked in the read of the workflow."""
    doc = await body_of(request, RunRequestDoc)
    requested = await run_requests.request_run_with_api_key(
        ctx_of(request), request[KEY_HASH], request.match_info["key"], doc
    )
    return ok(run_out(requested.run, requested.workflow_key), 201 if requested.created else 200)


async def get_run(request: web.Request) -> web.Response:
    """`?wait=N` (≤ 30 s) holds the answer until the run is decided or the time is up."""
    wait = _wait_seconds(request.query.get("wait"))
    ctx, pulse = ctx_of(request), request.app[PULSE]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        run, decisions = await runs.get_run(ctx, request[WORKSPACE], request.match_info["id"])
        remaining = deadline - loop.time()
        if run.state.is_final or remaining <= 0:
            break
        # Woken at once by a commit in this process; re-checked every second for other processes.
        await pulse.wait(min(remaining, 1.0))
    return ok(run_out(run, await runs.workflow_key_of(ctx, run), decisions))


def _wait_seconds(raw: str | None) -> float:
    if raw is None:
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        raise InvalidInput("wait must be a number of seconds (0–30)", {"wait": "0–30"}) from None
    if not 0 <= wait <= MAX_WAIT:
        raise InvalidInput("wait must be between 0 and 30 seconds", {"wait": "0–30"})
    return wait


async def verify_run(request: web.Request) -> web.Response:
    body = await body_of(request, VerifyIn)
    run = await runs.verify_fingerprint(
        ctx_of(request), request[WORKSPACE], request.match_info["id"], body.fingerprint
    )
    return ok(VerifiedOut(id=run.id, state=run.state, fingerprint=run.fingerprint))


# ---- audit ---------------------------------------------------------------------------------


async def export_audit(request: web.Request) -> web.StreamResponse:
    """Streamed as it is read: CSV or JSON Lines at any size, in constant memory."""
    query = request.query
    fmt_raw = query.get("format", "jsonl")
    if fmt_raw not in ("csv", "jsonl"):
        raise InvalidInput("format is csv or jsonl", {"format": "csv or jsonl"})
    fmt = audit.ExportFormat(fmt_raw)
    now = datetime.now(UTC)
    entity = audit.parse_entity(query["entity"]) if query.get("entity") else (None, None)
    where = AuditFilter(
        entity_type=entity[0],
        entity_id=entity[1],
        since=parse_moment(query["since"], now) if query.get("since") else None,
        until=parse_moment(query["until"], now) if query.get("until") else None,
    )
    # API keys are made by operators; they read the log as an admin would. Exports are audited.
    actor = Actor(f"api:{request[KEY_NAME]}", None, Role.ADMIN)
    chunks = await audit.export_events(ctx_of(request), request[WORKSPACE], where, fmt, actor)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8"
            if fmt is audit.ExportFormat.CSV
            else "application/x-ndjson"
        }
    )
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk.encode("utf-8"))
    await response.write_eof()
    return response


async def audit_report(request: web.Request) -> web.Response:
    """The incident report on `entity` (PDF, Markdown, or the JSON Lines export beside it)."""
    query = request.query
    fmt_raw = query.get("format", "pdf")
    if fmt_raw not in tuple(reports.ReportFormat):
        raise InvalidInput("format is pdf, md or jsonl", {"format": "pdf, md or jsonl"})
    if not query.get("entity"):
        raise InvalidInput(
            "say what the report is about: entity=workflow:<key> or connector:<key>",
            {"entity": "workflow:<key> or connector:<key>"},
        )
    now = ctx_of(request).clock.now()  # ages count back from the service's now
    fmt = reports.ReportFormat(fmt_raw)
    # As for exports: an API key reads the log as an admin would, and the report is audited.
    bundle = await reports.incident_report(
        ctx_of(request),
        request[WORKSPACE],
        query["entity"],
        parse_moment(query["since"], now) if query.get("since") else None,
        parse_moment(query["until"], now) if query.get("until") else None,
        fmt,
        Actor(f"api:{request[KEY_NAME]}", None, Role.ADMIN),
    )
    document = await rendered(bundle, fmt)
    return web.Response(
        body=document.content,
        headers={
            "Content-Type": document.media_type,
            "Content-Disposition": f'attachment; filename="{document.name}"',
        },
    )


async def openapi_document(_request: web.Request) -> web.Response:
    return web.json_response(openapi.document())


def build_api(ctx: Context, pulse: Pulse) -> web.Application:
    api = web.Application(middlewares=MIDDLEWARES)
    api[CTX] = ctx
    api[PULSE] = pulse
    api[KEYED] = frozenset({request_run})
    routes = [
        web.get("/openapi.json", openapi_document),
        web.get("/workflows", list_workflows),
        web.put("/workflows/{key}", put_workflow),
        web.get("/workflows/{key}", get_workflow),
        web.post("/workflows/{key}/status", change_status),
        web.put("/workflows/{key}/triggers/{trigger}", put_trigger),
        web.post("/workflows/{key}/runs", request_run),
        web.get("/connectors", list_connectors),
        web.put("/connectors/{key}", put_connector),
        web.post("/connectors/{key}/health", report_health),
        web.post("/connectors/{key}/pause-affected", pause_affected_by_connector),
        web.post("/connectors/{key}/resume", resume_by_connector),
        web.get("/alerts", list_alerts),
        web.post("/alerts/{id}/pause-affected", pause_affected_by_id),
        web.post("/alerts/{id}/resume", resume_by_id),
        web.get("/runs/{id}", get_run),
        web.post("/runs/{id}/verify", verify_run),
        web.get("/audit", export_audit),
        web.get("/audit/report", audit_report),
    ]
    api.add_routes(routes)
    return api

"""The OpenAPI 3.1 document of `/api/v1`, generated from the pydantic models the API uses."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from trame_bot import __version__
from trame_bot.documents import ConnectorDoc, RunRequestDoc, WorkflowDoc
from trame_bot.http import rules
from trame_bot.http.schemas import (
    ActedOut,
    AlertActionIn,
    AlertList,
    ConnectorList,
    ConnectorOut,
    ErrorOut,
    HealthReportIn,
    RunOut,
    StatusChangeIn,
    TriggerIn,
    VerifiedOut,
    VerifyIn,
    WorkflowDetailOut,
    WorkflowList,
    WorkflowOut,
)

ERRORS = {
    "400": "The body is not JSON, or a query parameter holds a control character.",
    "401": "No valid API key.",
    "403": "The named actor's role does not allow this.",
    "404": "Not found in this key's workspace.",
    "409": "Conflict with the current state.",
    "413": "The body is larger than 1 MB.",
    "422": "The request does not match its schema; `fields` names the culprits.",
    "503": "A dependency is down; retry after `Retry-After` seconds.",
}
BODY = ("400", "401", "413", "422", "503")
"""What any operation with a body can answer besides its own statuses."""
RULES_422 = {
    "putWorkflow": "The body does not match its schema, or breaks a rule the schema cannot "
    "say: its `key` differs from the URL's; a step names a connector this workspace does not "
    "have; a step writes (`access: write`) through a connector granted read only (its scopes "
    "are all `read` or `read:<target>`; `fields` names `steps.N.access`); a new workflow's "
    "`status` is not draft or pilot; trigger keys repeat.",
    "putConnector": "The body does not match its schema, or its `key` differs from the URL's.",
    "changeStatus": "The body does not match its schema, or (going live) its rollback plan "
    "names triggers the workflow does not have.",
}
STATUSES_409 = {
    "putWorkflow": "Saved by someone else at the same moment; try again.",
    "changeStatus": "The workflow cannot go from its status to the one asked for, or the "
    "transition needs what the body does not give (a sign-off, a rollback plan).",
    "requestRun": "The idempotency key was used for a different request.",
    "putConnector": "The account is registered as another connector, here or elsewhere.",
    "verifyRun": "The run is not approved, or the fingerprint differs from the approved plan.",
}
STATUSES_404 = {
    "putWorkflow": "The URL's key holds a control character, so it names nothing.",
    "putConnector": "The URL's key holds a control character, so it names nothing.",
    "listAlerts": "No connector of that key in this key's workspace.",
}
ALERT_404 = (
    "No alert of that id in this key's workspace (another workspace's alert is not told apart "
    "from one that does not exist)."
)
CONNECTOR_ALERT_404 = (
    "No connector of that key in this key's workspace, or it has never had a “needs "
    "attention” alert."
)
PAUSE_409 = (
    "Already done from this alert (the message says by whom and when), or the alert is a "
    "recovery notice (only a “needs attention” alert pauses)."
)
RESUME_409 = (
    "Already done from this recovery notice (the message says by whom and when); the connector "
    "is unhealthy (again), with its error; nothing paused from the outage is still paused "
    "unchanged; or the outage has no recovery notice yet."
)
for operation_id, text in {
    "pauseAffectedByAlert": ALERT_404,
    "resumeByAlert": ALERT_404,
    "pauseAffected": CONNECTOR_ALERT_404,
    "resumeAffected": CONNECTOR_ALERT_404,
}.items():
    STATUSES_404[operation_id] = text
STATUSES_409.update(
    pauseAffectedByAlert=PAUSE_409,
    pauseAffected=PAUSE_409,
    resumeByAlert=RESUME_409,
    resumeAffected=RESUME_409,
)
NO_CONTROL_STRING = {"type": "string", "pattern": rules.NO_CONTROL}


def path(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


KEY = path("key", NO_CONTROL_STRING, "A workflow's or connector's key.")
NEW_KEY = path(
    "key",
    {"type": "string", "pattern": rules.KEY_IN_PATH},
    "The key to save under; the body's `key` must be the same (any case).",
)
RUN_ID = path("id", NO_CONTROL_STRING, "A run's id.")
ALERT_ID = path(
    "id",
    {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    "A connector alert's id (`GET /alerts`): for a resume, the “needs attention” alert or its "
    "recovery notice.",
)
CONNECTOR_KEY = path(
    "key",
    NO_CONTROL_STRING,
    "A connector's key: its latest “needs attention” alert is meant (for a resume, that "
    "outage's recovery notice).",
)
ALERT_QUERY = [
    {
        "name": "connector",
        "in": "query",
        "required": False,
        "schema": NO_CONTROL_STRING,
        "description": "Only this connector's alerts (empty: all).",
    }
]
TRIGGER = path("trigger", NO_CONTROL_STRING, "A trigger's key.")
WAIT = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "Seconds (0–30) to hold the answer until the run is decided.",
    "schema": {"type": "number", "minimum": 0, "maximum": 30},
}
AUDIT_QUERY = [
    {
        "name": "entity",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "pattern": rules.ENTITY},
        "description": "workflow:<key>, connector:<key> or run:<id> (or another entity type)",
    },
    {
        "name": "since",
        "in": "query",
        "required": False,
        "schema": rules.moment("A date, a date-time (UTC unless it says) or an age like 7d."),
    },
    {
        "name": "until",
        "in": "query",
        "required": False,
        "schema": rules.moment("As `since`."),
    },
    {
        "name": "format",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["csv", "jsonl"]},
    },
]

REPORT_ENTITY = (
    f"^[{rules.SPACE}]*(workflow|connector):[^{rules.CONTROL}]*"
    f"[^{rules.CONTROL}{rules.SPACE}][^{rules.CONTROL}]*$"
)
"""`reports.report_entity` on the trimmed value: a workflow or a connector, an id not blank."""
REPORT_QUERY = [
    {
        "name": "entity",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "pattern": REPORT_ENTITY},
        "description": "workflow:<key> or connector:<key>: the report covers it, and the "
        "connectors the workflow uses or the workflows that use the connector.",
        "examples": {"workflow": {"value": "workflow:invoice-sync"}},
    },
    {
        "name": "since",
        "in": "query",
        "required": False,
        "schema": rules.moment("Start of the window (default: 7 days before `until`)."),
    },
    {
        "name": "until",
        "in": "query",
        "required": False,
        "schema": rules.moment("End of the window (default: now); after `since`."),
    },
    {
        "name": "format",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["pdf", "md", "jsonl"], "default": "pdf"},
        "description": "The report as PDF or Markdown, or the JSON Lines export that goes "
        "beside it (check it offline with `trame-bot audit verify --file`).",
    },
]
REPORT_422 = (
    "A parameter does not match its schema, or breaks a rule it cannot say: the window ends "
    "before it starts (an `until` before `since`, or a `since` after now and no `until`); the "
    "report would be too large (narrow the window or the entity)."
)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    parameters: list[dict[str, Any]]
    request: type[BaseModel] | None
    responses: dict[str, type[BaseModel]]
    errors: tuple[str, ...]
    """Every error status the operation can answer."""
    request_required: bool = True


OPERATIONS: list[Operation] = [
    Operation(
        "get",
        "/workflows",
        "listWorkflows",
        "List workflows",
        [],
        None,
        {"200": WorkflowList},
        ("400", "401", "503"),
    ),
    Operation(
        "put",
        "/workflows/{key}",
        "putWorkflow",
        "Create or update a workflow",
        [NEW_KEY],
        WorkflowDoc,
        {"200": WorkflowOut, "201": WorkflowOut},
        (*BODY, "404", "409"),
    ),
    Operation(
        "get",
        "/workflows/{key}",
        "getWorkflow",
        "Read a workflow",
        [KEY],
        None,
        {"200": WorkflowDetailOut},
        ("400", "401", "404", "503"),
    ),
    Operation(
        "post",
        "/workflows/{key}/status",
        "changeStatus",
        "Change a workflow's status",
        [KEY],
        StatusChangeIn,
        {"200": WorkflowOut},
        (*BODY, "403", "404", "409"),
    ),
    Operation(
        "put",
        "/workflows/{key}/triggers/{trigger}",
        "setTrigger",
        "Enable or disable a trigger",
        [KEY, TRIGGER],
        TriggerIn,
        {"200": WorkflowOut},
        (*BODY, "403", "404"),
    ),
    Operation(
        "post",
        "/workflows/{key}/runs",
        "requestRun",
        "Ask whether a run may go",
        [KEY],
        RunRequestDoc,
        {"200": RunOut, "201": RunOut},
        (*BODY, "404", "409"),
    ),
    Operation(
        "get",
        "/connectors",
        "listConnectors",
        "List connectors",
        [],
        None,
        {"200": ConnectorList},
        ("400", "401", "503"),
    ),
    Operation(
        "put",
        "/connectors/{key}",
        "putConnector",
        "Create or update a connector",
        [NEW_KEY],
        ConnectorDoc,
        {"200": ConnectorOut, "201": ConnectorOut},
        (*BODY, "404", "409"),
    ),
    Operation(
        "post",
        "/connectors/{key}/health",
        "reportHealth",
        "Report a connector's health",
        [KEY],
        HealthReportIn,
        {"200": ConnectorOut},
        (*BODY, "404"),
    ),
    Operation(
        "get",
        "/runs/{id}",
        "getRun",
        "Read a run (long-poll with wait)",
        [RUN_ID, WAIT],
        None,
        {"200": RunOut},
        ("400", "401", "404", "422", "503"),
    ),
    Operation(
        "post",
        "/runs/{id}/verify",
        "verifyRun",
        "Check the plan before executing",
        [RUN_ID],
        VerifyIn,
        {"200": VerifiedOut},
        (*BODY, "404", "409"),
    ),
    Operation(
        "get",
        "/alerts",
        "listAlerts",
        "List connector alerts, newest first",
        ALERT_QUERY,
        None,
        {"200": AlertList},
        ("400", "401", "404", "503"),
    ),
    Operation(
        "post",
        "/alerts/{id}/pause-affected",
        "pauseAffectedByAlert",
        "Pause the workflows using the alert's connector (the alert's button)",
        [ALERT_ID],
        AlertActionIn,
        {"200": ActedOut},
        (*BODY, "403", "404", "409"),
        request_required=False,
    ),
    Operation(
        "post",
        "/alerts/{id}/resume",
        "resumeByAlert",
        "Resume the workflows paused from an outage alert (the recovery notice's button)",
        [ALERT_ID],
        AlertActionIn,
        {"200": ActedOut},
        (*BODY, "403", "404", "409"),
        request_required=False,
    ),
    Operation(
        "post",
        "/connectors/{key}/pause-affected",
        "pauseAffected",
        "Pause the workflows using a connector, from its latest alert",
        [CONNECTOR_KEY],
        AlertActionIn,
        {"200": ActedOut},
        (*BODY, "403", "404", "409"),
        request_required=False,
    ),
    Operation(
        "post",
        "/connectors/{key}/resume",
        "resumeAffected",
        "Resume the workflows paused from a connector's latest alert",
        [CONNECTOR_KEY],
        AlertActionIn,
        {"200": ActedOut},
        (*BODY, "403", "404", "409"),
        request_required=False,
    ),
]
MODELS: list[type[BaseModel]] = [
    WorkflowDoc,
    ConnectorDoc,
    RunRequestDoc,
    StatusChangeIn,
    TriggerIn,
    HealthReportIn,
    VerifyIn,
    AlertActionIn,
    WorkflowOut,
    WorkflowDetailOut,
    WorkflowList,
    ConnectorOut,
    ConnectorList,
    RunOut,
    VerifiedOut,
    AlertList,
    ActedOut,
    ErrorOut,
]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(model)}}


def _error(operation_id: str, code: str) -> dict[str, Any]:
    special = {"404": STATUSES_404, "409": STATUSES_409, "422": RULES_422}.get(code, {})
    description = special.get(operation_id, ERRORS[code])
    return {"description": description, "content": _json(ErrorOut)}


@cache
def document() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [
            (m, "validation" if m.__name__.endswith(("Doc", "In")) else "serialization")
            for m in MODELS
        ],
        ref_template="#/components/schemas/{model}",
        schema_generator=rules.RequestSchema,
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        operation: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "parameters": op.parameters,
            "responses": {
                **{
                    code: {
                        "description": "OK" if code == "200" else "Created",
                        "content": _json(model),
                    }
                    for code, model in op.responses.items()
                },
                **{code: _error(op.operation_id, code) for code in sorted(op.errors)},
            },
        }
        if op.request is not None:
            operation["requestBody"] = {
                "required": op.request_required,
                "content": _json(op.request),
            }
        paths.setdefault(op.path, {})[op.method] = operation
    paths["/audit"] = {
        "get": {
            "operationId": "exportAudit",
            "summary": "Export the audit log, streamed (JSON Lines by default, or CSV)",
            "parameters": AUDIT_QUERY,
            "responses": {
                "200": {
                    "description": "The matching events, oldest first",
                    "content": {
                        "application/x-ndjson": {"schema": {"type": "string"}},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                **{code: _error("exportAudit", code) for code in ("400", "401", "422", "503")},
            },
        }
    }
    paths["/audit/report"] = {
        "get": {
            "operationId": "auditReport",
            "summary": "The incident report on a workflow or connector for a client",
            "parameters": REPORT_QUERY,
            "responses": {
                "200": {
                    "description": "The report (a file to send as it is), or its export",
                    "headers": {
                        "Content-Disposition": {
                            "description": "attachment; the file's name",
                            "schema": {"type": "string"},
                        }
                    },
                    "content": {
                        "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                        "text/markdown": {"schema": {"type": "string"}},
                        "application/x-ndjson": {"schema": {"type": "string"}},
                    },
                },
                **{code: _error("auditReport", code) for code in ("400", "401", "404", "503")},
                "422": {"description": REPORT_422, "content": _json(ErrorOut)},
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trame-bot API",
            "version": __version__,
            "description": "Ask whether a workflow run may go, learn the decision, verify the plan. "
            "Authenticate with `Authorization: Bearer <workspace API key>`.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": paths,
    }

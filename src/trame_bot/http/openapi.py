"""The OpenAPI 3.1 document of `/api/v1`, generated from the pydantic models the API uses."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from trame_bot import __version__
from trame_bot.documents import ConnectorDoc, RunRequestDoc, WorkflowDoc
from trame_bot.http.schemas import (
    ConnectorList,
    ConnectorOut,
    ErrorOut,
    HealthReportIn,
    RunOut,
    StatusChangeIn,
    TriggerIn,
    VerifiedOut,
    VerifyIn,
    WorkflowList,
    WorkflowOut,
)

ERRORS = {
    "400": "The body is not JSON, or a parameter is malformed.",
    "401": "No valid API key.",
    "403": "The named actor's role does not allow this.",
    "404": "Not found in this key's workspace.",
    "409": "Conflict: invalid status transition, run not approved, fingerprint mismatch, idempotency key reuse.",
    "413": "The body is larger than 1 MB.",
    "422": "The body does not match its schema; `fields` names the culprits.",
    "503": "A dependency is down; retry after `Retry-After` seconds.",
}
KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
RUN_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
TRIGGER = {"name": "trigger", "in": "path", "required": True, "schema": {"type": "string"}}
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
        "schema": {"type": "string"},
        "description": "workflow:<key>, connector:<key> or run:<id>",
    },
    {
        "name": "since",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "ISO date/time, or an age like 7d",
    },
    {"name": "until", "in": "query", "required": False, "schema": {"type": "string"}},
    {
        "name": "format",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["csv", "jsonl"]},
    },
]

# (method, path, operationId, summary, parameters, request model, {status: response model})
Operation = tuple[
    str, str, str, str, list[dict[str, Any]], type[BaseModel] | None, dict[str, type[BaseModel]]
]
OPERATIONS: list[Operation] = [
    ("get", "/workflows", "listWorkflows", "List workflows", [], None, {"200": WorkflowList}),
    (
        "put",
        "/workflows/{key}",
        "putWorkflow",
        "Create or update a workflow",
        [KEY],
        WorkflowDoc,
        {"200": WorkflowOut, "201": WorkflowOut},
    ),
    (
        "get",
        "/workflows/{key}",
        "getWorkflow",
        "Read a workflow",
        [KEY],
        None,
        {"200": WorkflowOut},
    ),
    (
        "post",
        "/workflows/{key}/status",
        "changeStatus",
        "Change a workflow's status",
        [KEY],
        StatusChangeIn,
        {"200": WorkflowOut},
    ),
    (
        "put",
        "/workflows/{key}/triggers/{trigger}",
        "setTrigger",
        "Enable or disable a trigger",
        [KEY, TRIGGER],
        TriggerIn,
        {"200": WorkflowOut},
    ),
    (
        "post",
        "/workflows/{key}/runs",
        "requestRun",
        "Ask whether a run may go",
        [KEY],
        RunRequestDoc,
        {"200": RunOut, "201": RunOut},
    ),
    ("get", "/connectors", "listConnectors", "List connectors", [], None, {"200": ConnectorList}),
    (
        "put",
        "/connectors/{key}",
        "putConnector",
        "Create or update a connector",
        [KEY],
        ConnectorDoc,
        {"200": ConnectorOut, "201": ConnectorOut},
    ),
    (
        "post",
        "/connectors/{key}/health",
        "reportHealth",
        "Report a connector's health",
        [KEY],
        HealthReportIn,
        {"200": ConnectorOut},
    ),
    (
        "get",
        "/runs/{id}",
        "getRun",
        "Read a run (long-poll with wait)",
        [RUN_ID, WAIT],
        None,
        {"200": RunOut},
    ),
    (
        "post",
        "/runs/{id}/verify",
        "verifyRun",
        "Check the plan before executing",
        [RUN_ID],
        VerifyIn,
        {"200": VerifiedOut},
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
    WorkflowOut,
    WorkflowList,
    ConnectorOut,
    ConnectorList,
    RunOut,
    VerifiedOut,
    ErrorOut,
]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(model)}}


@cache
def document() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [
            (m, "validation" if m.__name__.endswith(("Doc", "In")) else "serialization")
            for m in MODELS
        ],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for method, path, operation_id, summary, parameters, request, responses in OPERATIONS:
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "summary": summary,
            "parameters": parameters,
            "responses": {
                **{
                    code: {
                        "description": "OK" if code == "200" else "Created",
                        "content": _json(model),
                    }
                    for code, model in responses.items()
                },
                **{
                    code: {"description": text, "content": _json(ErrorOut)}
                    for code, text in ERRORS.items()
                },
            },
        }
        if request is not None:
            operation["requestBody"] = {"required": True, "content": _json(request)}
        paths.setdefault(path, {})[method] = operation
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
                **{
                    code: {"description": ERRORS[code], "content": _json(ErrorOut)}
                    for code in ("400", "401", "422", "503")
                },
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

"""What a run request is decided on, in one Core read: the workspace (named by its key, or by
one of its API keys), the workflow held against a change, the requester's role and the gate's
other inputs. Plain rows: every run request asks, and ORM entities cost more to build than
the read itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, BindParameter, and_, bindparam, column, func, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import ColumnElement, FromClause, Select

from trame_bot.domain.enums import Health, Role, Status
from trame_bot.store.functions import array_elements, embedded_json, json_rows
from trame_bot.store.models import ApiKey, Connector, Member, Trigger, Workflow, Workspace

_ws, _wf, _member, _key = (
    Workspace.__table__,
    Workflow.__table__,
    Member.__table__,
    ApiKey.__table__,
)
_trigger, _connector = Trigger.__table__, Connector.__table__


@dataclass(frozen=True)
class ByApiKey:
    """A workspace named by one of its API keys, by the key's hash: the read that finds the
    workflow checks the key too (known, not revoked), so a request pays for one read."""

    key_hash: str


@dataclass(frozen=True)
class RunWorkspace:
    """The workspace's columns a run request uses (a `store.audit.ChainOwner`)."""

    id: int
    key: str
    approval_ttl_seconds: int


@dataclass(frozen=True)
class RunWorkflow:
    """The workflow's columns a run request uses."""

    id: int
    key: str
    status: Status
    version: int
    steps: list[Any]
    fingerprint: str
    """Of the steps and version."""
    reviewers: list[str]
    required_approvals: int
    required_details: dict[str, Any]


@dataclass(frozen=True)
class RunScope:
    """What a run request is decided on: the workspace, the workflow (held `FOR KEY SHARE`),
    the requester's role, and the gate's other inputs read in the same statement."""

    workspace: RunWorkspace
    workflow: RunWorkflow
    role: Role | None
    triggers: tuple[tuple[str, bool], ...]
    """The workflow's triggers and whether each is on."""
    health: dict[str, Health]
    """The health of each connector of the workspace that the workflow's steps name."""
    scopes: dict[str, list[str]]
    """What each of those connectors is granted."""
    key_name: str | None = None
    """The API key's name when the workspace was named `ByApiKey`."""


_WORKSPACE_COLUMNS = (_ws.c.id, _ws.c.key, _ws.c.approval_ttl_seconds)
_WORKFLOW_COLUMNS = (
    _wf.c.id,
    _wf.c.key,
    _wf.c.status,
    _wf.c.version,
    _wf.c.steps,
    _wf.c.fingerprint,
    _wf.c.reviewers,
    _wf.c.required_approvals,
    _wf.c.required_details,
)
_step = array_elements(_wf.c.steps).table_valued(column("value", JSON))
_ref: BindParameter[str] = bindparam("ref")
_named = (func.lower(_wf.c.key) == _ref, func.lower(_wf.c.name) == _ref)


def _scope_of(named_by: FromClause, key_name: ColumnElement[Any]) -> Select[Any]:
    """The read from `named_by`: the workspaces themselves, or an API key joined to its
    workspace; `key_name` is the key's name, or NULL when the workspace is named by its own
    key. The workflow's key wins over another workflow's name (as `store.workflows.find`)."""
    return (
        select(
            *_WORKSPACE_COLUMNS,
            *_WORKFLOW_COLUMNS,
            _member.c.role,
            key_name,
            select(json_rows(_trigger.c.key, _trigger.c.enabled))
            .where(_trigger.c.workflow_id == _wf.c.id)
            .scalar_subquery(),
            select(
                json_rows(_connector.c.key, _connector.c.health, embedded_json(_connector.c.scopes))
            )
            .where(
                _connector.c.workspace_id == _ws.c.id,
                _connector.c.key.in_(select(_step.c.value["connector"].as_string())),
            )
            .scalar_subquery(),
        )
        .select_from(
            named_by.join(_wf, _wf.c.workspace_id == _ws.c.id).outerjoin(
                _member,
                and_(
                    _member.c.workspace_id == _ws.c.id,
                    _member.c.slack_user_id == bindparam("user"),
                ),
            )
        )
        .where(or_(*_named))
        .order_by(_named[0].desc(), _wf.c.id)
        .limit(1)
        .with_for_update(of=_wf, read=True, key_share=True)
    )


_BY_WORKSPACE_KEY = _scope_of(_ws, null()).where(_ws.c.key == bindparam("workspace"))
_BY_API_KEY = _scope_of(
    _key.join(
        _ws,
        and_(
            _ws.c.id == _key.c.workspace_id,
            _key.c.key_hash == bindparam("workspace"),
            _key.c.revoked_at.is_(None),
        ),
    ),
    _key.c.name,
)


async def for_run(
    session: AsyncSession, workspace: str | ByApiKey, ref: str, user: str | None
) -> RunScope | None:
    """The workflow `ref` names (as `store.workflows.find` matches it) held against a change
    until the transaction ends (`FOR KEY SHARE`: what was read stays true, as a pause or a
    save waits for it, and run requests do not wait for each other), the role of `user`, and
    in the same statement the workflow's triggers and the health and grants of the
    connectors its steps name. None when the workspace (or its active key) or the workflow
    is missing."""
    statement, named = (
        (_BY_API_KEY, workspace.key_hash)
        if isinstance(workspace, ByApiKey)
        else (_BY_WORKSPACE_KEY, workspace)
    )
    connection = await session.connection()
    params = {"workspace": named, "ref": ref.strip().lower(), "user": user or ""}
    found = (await connection.execute(statement, params)).one_or_none()
    if found is None:
        return None
    workspace_end = len(_WORKSPACE_COLUMNS)
    workflow_end = workspace_end + len(_WORKFLOW_COLUMNS)
    role, key_name, triggers, connectors = found[workflow_end:]
    return RunScope(
        RunWorkspace(*found[:workspace_end]),
        RunWorkflow(*found[workspace_end:workflow_end]),
        role,
        triggers=tuple((key, bool(on)) for key, on in triggers),
        health={key: Health(health) for key, health, _ in connectors},
        scopes={key: scopes for key, _, scopes in connectors},
        key_name=key_name,
    )

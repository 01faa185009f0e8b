"""Build test data through the real services, the way users do."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.bootstrap import Deps
from trame_bot.config import Settings
from trame_bot.documents import ConnectorDoc, RunRequestDoc, WorkflowDoc
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role
from trame_bot.services import connectors, run_requests, workflows, workspaces
from trame_bot.store import audit as audit_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.audit import ChainOwner
from trame_bot.store.models import Connector, Run, Workflow, Workspace

OWNER, ADMIN, MEMBER, OTHER = "U0OWNER", "U0ADMIN", "U0MEMBER", "U0MEMBER2"
CLI = Actor.cli()
CLIENT_SECRET = "client-secret-SECRET"
SIGNING_SECRET = "signing-secret-SECRET-5678"
_channels = itertools.count(1)


async def workspace(
    deps: Deps,
    key: str = "acme",
    *,
    regulated: bool = False,
    allow_self_approval: bool = False,
    webhook_url: str | None = None,
    members: Sequence[tuple[str, Role]] = (
        (OWNER, Role.OWNER),
        (ADMIN, Role.ADMIN),
        (MEMBER, Role.MEMBER),
        (OTHER, Role.MEMBER),
    ),
) -> Workspace:
    n = next(_channels)
    created = await workspaces.create_workspace(
        deps.ctx,
        key,
        workspaces.WorkspaceSettings(
            name=key.title(),
            approvals_channel=f"C0APPR{n:04d}",
            ops_channel=f"C0OPS{n:04d}",
            regulated=regulated,
            allow_self_approval=allow_self_approval,
            webhook_url=webhook_url,
        ),
        CLI,
    )
    for user, role in members:
        await workspaces.set_role(deps.ctx, key, user, role, CLI)
    return created.workspace


GRANTED = {"sheets": ["read", "write:finance"]}
"""Scopes by connector key: `workflow_doc`'s plan writes through sheets; others only read."""


async def connector(deps: Deps, ws: str, key: str, **overrides: Any) -> Connector:
    scopes = GRANTED.get(key, ["read"])
    doc = {"key": key, "toolkit": "salesforce", "account": f"{ws}/{key}", "scopes": scopes}
    applied = await connectors.apply_connector(
        deps.ctx, ws, ConnectorDoc(**{**doc, **overrides}), CLI
    )
    return applied.connector


def workflow_doc(key: str = "invoice-sync", **overrides: Any) -> WorkflowDoc:
    doc: dict[str, Any] = {
        "key": key,
        "name": key.replace("-", " ").capitalize(),
        "status": "pilot",
        "steps": [
            {"name": "Fetch", "tool": "salesforce.query", "connector": "crm", "access": "read"},
            {"name": "Append", "tool": "sheets.append", "connector": "sheets", "access": "write"},
        ],
        "triggers": [{"key": "nightly", "kind": "schedule"}],
    }
    return WorkflowDoc(**{**doc, **overrides})


async def workflow(
    deps: Deps, ws: str = "acme", key: str = "invoice-sync", **overrides: Any
) -> Workflow:
    applied = await workflows.apply_workflow(deps.ctx, ws, workflow_doc(key, **overrides), CLI)
    return applied.workflow


async def governed_workspace(deps: Deps, key: str = "acme", **options: Any) -> Workspace:
    """A workspace with two healthy connectors: crm (read), sheets (read, write:finance)."""
    ws = await workspace(deps, key, **options)
    await connector(deps, key, "crm")
    await connector(deps, key, "sheets", toolkit="google-sheets")
    return ws


async def request(
    deps: Deps, ws: str = "acme", wf: str = "invoice-sync", *, by: str = MEMBER, **fields: Any
) -> Run:
    doc = RunRequestDoc(**{"requested_by": by, **fields})
    return (await run_requests.request_run(deps.ctx, ws, wf, doc, Actor.api("engine"))).run


async def slack_installation(
    deps: Deps,
    ws: str = "acme",
    *,
    team: str = "T0CLIENT",
    token: str = "xoxb-client-SECRET-0001",
    name: str | None = None,
    refresh_token: str | None = None,
    expires_at: datetime | None = None,
) -> None:
    """The workspace bound to a Slack team installed by OAuth (distributed mode), its tokens
    sealed as an install stores them (a rotating token with `refresh_token` and `expires_at`).
    Again for the same team: a reinstall (new token, connected again), as
    `installations.complete_install` leaves it."""
    from trame_bot.store import installations as installation_store
    from trame_bot.store import workspaces as workspace_store
    from trame_bot.store.models import SlackInstallation

    vault = deps.ctx.vault
    assert vault is not None, "distributed settings (TRAME_ENCRYPTION_KEY) needed"
    async with deps.db.transaction() as session:
        workspace = await workspace_store.get(session, ws)
        row = await installation_store.for_team(session, team) or SlackInstallation(team_id=team)
        row.team_name = name or team.title()
        row.bot_token = vault.seal(token)
        row.bot_refresh_token = vault.seal(refresh_token) if refresh_token else None
        row.bot_token_expires_at = expires_at
        row.bot_user_id = f"U0BOT{team[-4:]}"
        row.installed_at = deps.clock.now()
        row.disconnected_at, row.disconnected_reason = None, None
        session.add(row)
        workspace.slack_team_id = team


def distributed_settings(database_url: str, key: str, **overrides: Any) -> Settings:
    """Settings of the distributed mode (OAuth installs, tokens sealed with `key`)."""
    fields: dict[str, Any] = {
        "database_url": database_url,
        "slack_client_id": "1.2",
        "slack_client_secret": CLIENT_SECRET,
        "slack_signing_secret": SIGNING_SECRET,
        "encryption_keys": (key,),
        "public_url": "https://bot.example.com",
    }
    return Settings(**{**fields, **overrides})


async def audit_event(
    deps: Deps, session: AsyncSession, summary: str, workspace: ChainOwner | None = None
) -> None:
    """One `test.appended` event queued on acme's chain (or `workspace`'s) in `session`."""
    owner = workspace or await workspace_store.get(session, "acme")
    await audit_store.append(
        session,
        owner,
        at=deps.clock.now(),
        actor="cli:test",
        action="test.appended",
        entity_type="workspace",
        entity_id=owner.key,
        summary=summary,
    )

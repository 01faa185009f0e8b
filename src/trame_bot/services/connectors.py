"""Connecting connectors and tracking their health."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.documents import ConnectorDoc
from trame_bot.domain.actors import Actor
from trame_bot.domain.changes import changed_fields
from trame_bot.domain.enums import Health, Status
from trame_bot.domain.health import Report, after_report, is_alert_transition
from trame_bot.domain.roles import check_connector_change
from trame_bot.domain.scopes import widened
from trame_bot.errors import Conflict
from trame_bot.services.access import role_of
from trame_bot.services.alerts import raise_alert
from trame_bot.services.context import Context
from trame_bot.services.scopes import flag_pending_cards
from trame_bot.store import audit as audit_store
from trame_bot.store import connectors as store
from trame_bot.store import workflows as workflow_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.models import Connector, Workflow, Workspace

ACCOUNT_TAKEN = (
    "account {account!r} is already registered in another workspace: a connector's "
    "external account may belong to one workspace only"
)


@dataclass(frozen=True)
class Applied:
    connector: Connector
    created: bool
    changed: list[str]
    widened: tuple[str, ...] = ()
    """Scope words granting what the connector did not have before (domain/scopes.py)."""


def _definition(connector: Connector) -> dict[str, Any]:
    return {
        "toolkit": connector.toolkit,
        "account": connector.account,
        "scopes": list(connector.scopes),
        "health_url": connector.health_url,
        "expires_at": connector.expires_at.isoformat() if connector.expires_at else None,
    }


async def apply_connector(ctx: Context, key: str, doc: ConnectorDoc, actor: Actor) -> Applied:
    """Create or change a connector from its document; re-applying the same one is a no-op."""
    now = ctx.clock.now()
    if doc.actor:
        actor = Actor(actor.label, doc.actor)
    try:
        async with ctx.db.transaction() as session:
            workspace = await workspace_store.get(session, key)
            check_connector_change(
                await role_of(session, workspace, actor), regulated=workspace.regulated
            )
            holder = await store.by_account(session, doc.account)
            if holder is not None and holder.workspace_id != workspace.id:
                raise Conflict(ACCOUNT_TAKEN.format(account=doc.account))
            if holder is not None and holder.key != doc.key:
                raise Conflict(f"account {doc.account!r} is already connector {holder.key!r} here")
            connector = await store.find(session, workspace.id, doc.key)
            created = connector is None
            before = None if connector is None else _definition(connector)
            if connector is None:
                connector = Connector(
                    workspace_id=workspace.id,
                    key=doc.key,
                    health=Health.OK,
                    health_since=now,
                    created_at=now,
                    last_reported_at=now,
                )
                session.add(connector)
            connector.toolkit, connector.account, connector.scopes = (
                doc.toolkit,
                doc.account,
                list(doc.scopes),
            )
            connector.health_url = doc.health_url
            connector.expires_at = doc.expires_at  # already UTC (ConnectorDoc)
            after = _definition(connector)
            changed = changed_fields(before, after)
            if not changed:
                return Applied(connector, False, [])
            connector.updated_at = now
            await session.flush()
            added = () if before is None else widened(before["scopes"], after["scopes"])
            data: dict[str, Any] = {"before": before, "after": after}
            if added:
                data["widened"] = list(added)
            await audit_store.append(
                session,
                workspace,
                at=now,
                actor=actor.audit_name,
                action="connector.connected" if created else store.WIDENED_IN,
                entity_type="connector",
                entity_id=doc.key,
                summary=f"connector {doc.key} ({doc.toolkit}) "
                + ("connected" if created else f"changed: {', '.join(changed)}")
                + (f"; scopes widened: {' '.join('+' + w for w in added)}" if added else ""),
                data=data,
            )
            if added:
                await flag_pending_cards(session, ctx, workspace, doc.key)
    except IntegrityError:
        raise Conflict(ACCOUNT_TAKEN.format(account=doc.account)) from None
    return Applied(connector, created, changed, added)


async def report_health(
    ctx: Context, key: str, connector_key: str, report: Report, error: str | None, actor: Actor
) -> Connector:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        workspace = await workspace_store.get(session, key)
        connector = await store.get(session, workspace.id, connector_key)
        connector.last_reported_at = connector.last_checked_at = now
        await record_health(session, ctx, workspace, connector, report, error, actor)
    return connector


async def record_health(
    session: AsyncSession,
    ctx: Context,
    workspace: Workspace,
    connector: Connector,
    report: Report,
    error: str | None,
    actor: Actor,
    *,
    workflows: Sequence[Workflow] | None = None,
) -> bool:
    """Apply a report inside the caller's transaction; True when the health changed.

    A transition is audited, and one that crosses ok ↔ not ok is alerted in the ops channel.
    `workflows` are the workspace's, when a caller recording many reports has read them once
    (the alert names those using the connector); otherwise they are read here.
    """
    before = connector.health
    after = after_report(before, report)
    connector.last_error = None if report is Report.OK else (error or report.value)[:2000]
    if after is before:
        return False
    now = ctx.clock.now()
    connector.health, connector.health_since = after, now
    await audit_store.append(
        session,
        workspace,
        at=now,
        actor=actor.audit_name,
        action="connector.health_changed",
        entity_type="connector",
        entity_id=connector.key,
        summary=f"connector {connector.key}: {before} → {after}",
        data={"before": before.value, "after": after.value, "error": connector.last_error},
    )
    if is_alert_transition(before, after):
        if workflows is None:
            workflows = await workflow_store.list_for(session, workspace.id)
        affected = workflow_store.using(workflows, connector.key)
        order = {Status.LIVE: 0, Status.PILOT: 1, Status.DRAFT: 2, Status.PAUSED: 3}
        affected.sort(key=lambda w: (order[w.status], w.key))
        await raise_alert(
            session,
            ctx,
            workspace,
            connector,
            "connector.recovered" if after is Health.OK else "connector.needs_attention",
            {
                "connector": connector.key,
                "toolkit": connector.toolkit,
                "health": after.value,
                "error": connector.last_error,
                "workflows": [
                    {"key": w.key, "name": w.name, "status": w.status.value} for w in affected
                ],
            },
        )
    return True


async def list_connectors(ctx: Context, key: str) -> Sequence[Connector]:
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        return await store.list_for(session, workspace.id)

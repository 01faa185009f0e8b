"""Connecting connectors and tracking their health through the real service."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.documents import ConnectorDoc
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Health, Status
from trame_bot.domain.health import Report
from trame_bot.errors import Conflict, Forbidden, NotFound
from trame_bot.services import connectors, workflow_status, workspaces
from trame_bot.store.models import AuditEvent, OutboxMessage, Workspace

ENGINE = Actor.api("engine")
STRANGER = "U0STRANGER"


async def events(deps: Deps, ws: str = "acme", prefix: str = "connector.") -> list[AuditEvent]:
    async with deps.db.reading() as session:
        rows = await session.execute(
            select(AuditEvent)
            .join(Workspace, Workspace.id == AuditEvent.workspace_id)
            .where(Workspace.key == ws, AuditEvent.action.startswith(prefix))
            .order_by(AuditEvent.seq)
        )
        return list(rows.scalars())


def data_of(event: AuditEvent) -> Any:
    return json.loads(event.data)


async def posts(deps: Deps) -> list[dict[str, Any]]:
    async with deps.db.reading() as session:
        rows = await session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.kind == "slack.post")
            .order_by(OutboxMessage.id)
        )
        return [row.payload for row in rows.scalars()]


def doc(key: str = "crm", **overrides: Any) -> ConnectorDoc:
    fields: dict[str, Any] = {
        "key": key,
        "toolkit": "salesforce",
        "account": "acme.my.salesforce.com/integration",
        "scopes": ["read"],
    }
    return ConnectorDoc(**{**fields, **overrides})


async def report(deps: Deps, outcome: Report, error: str | None = None, key: str = "crm") -> Health:
    connector = await connectors.report_health(deps.ctx, "acme", key, outcome, error, ENGINE)
    return connector.health


# ---- applying ------------------------------------------------------------------------------


async def test_apply_creates_a_healthy_connector_and_audits_it(deps: Deps) -> None:
    await f.workspace(deps)
    applied = await connectors.apply_connector(
        deps.ctx,
        "acme",
        doc(health_url="https://status.example.com/sf", expires_at="2026-12-01T00:00:00Z"),
        f.CLI,
    )
    assert applied.created
    assert applied.changed == ["account", "expires_at", "health_url", "scopes", "toolkit"]
    assert applied.connector.health is Health.OK
    [event] = await events(deps)
    assert (event.action, event.actor, event.entity_type, event.entity_id) == (
        "connector.connected",
        "cli",
        "connector",
        "crm",
    )
    assert data_of(event) == {
        "before": None,
        "after": {
            "toolkit": "salesforce",
            "account": "acme.my.salesforce.com/integration",
            "scopes": ["read"],
            "health_url": "https://status.example.com/sf",
            "expires_at": "2026-12-01T00:00:00+00:00",
        },
    }
    [listed] = await connectors.list_connectors(deps.ctx, "acme")
    assert (listed.key, listed.toolkit, listed.scopes) == ("crm", "salesforce", ["read"])


async def test_re_applying_the_same_document_writes_nothing(deps: Deps) -> None:
    await f.workspace(deps)
    cases: list[dict[str, Any]] = [
        {},
        {"scopes": ["read", "write:#ops"], "health_url": "https://status.example.com/sf"},
        {"expires_at": "2026-12-01T00:00:00Z"},
    ]
    for n, overrides in enumerate(cases):
        document = doc(f"crm-{n}", account=f"acme/crm-{n}", **overrides)
        await connectors.apply_connector(deps.ctx, "acme", document, f.CLI)
        again = await connectors.apply_connector(deps.ctx, "acme", document, ENGINE)
        assert (again.created, again.changed) == (False, []), overrides
    assert [e.action for e in await events(deps)] == ["connector.connected"] * len(cases)


async def test_re_applying_an_expiry_with_an_offset_writes_nothing(deps: Deps) -> None:
    await f.workspace(deps)
    document = doc(expires_at="2026-12-01T01:00:00+01:00")
    await connectors.apply_connector(deps.ctx, "acme", document, f.CLI)
    again = await connectors.apply_connector(deps.ctx, "acme", document, f.CLI)
    assert (again.created, again.changed) == (False, [])
    assert [e.action for e in await events(deps)] == ["connector.connected"]


async def test_a_change_is_audited_with_the_fields_that_changed(
    deps: Deps, clock: FakeClock
) -> None:
    await f.workspace(deps)
    await connectors.apply_connector(deps.ctx, "acme", doc(), f.CLI)
    clock.advance(timedelta(minutes=5))
    changed = await connectors.apply_connector(
        deps.ctx,
        "acme",
        doc(scopes=["read", "write:#ops"], health_url="https://status.example.com/sf"),
        ENGINE,
    )
    assert (changed.created, changed.changed) == (False, ["health_url", "scopes"])
    assert changed.connector.updated_at == clock.now()
    _, event = await events(deps)
    assert (event.action, event.actor, event.entity_id) == (
        "connector.changed",
        "api:engine",
        "crm",
    )
    assert event.summary == (
        "connector crm (salesforce) changed: health_url, scopes; scopes widened: +write:#ops"
    )
    data = data_of(event)
    assert (data["before"]["scopes"], data["after"]["scopes"]) == (["read"], ["read", "write:#ops"])
    assert (data["before"]["health_url"], data["after"]["health_url"]) == (
        None,
        "https://status.example.com/sf",
    )
    assert data["before"]["account"] == data["after"]["account"]


async def test_a_change_keeps_the_connectors_health(deps: Deps) -> None:
    await f.workspace(deps)
    await connectors.apply_connector(deps.ctx, "acme", doc(), f.CLI)
    await report(deps, Report.ERROR, "token expired")
    changed = await connectors.apply_connector(deps.ctx, "acme", doc(scopes=["write"]), f.CLI)
    assert changed.connector.health is Health.NEEDS_ATTENTION


# ---- isolation -----------------------------------------------------------------------------


async def test_an_account_of_another_workspace_is_refused_without_naming_it(deps: Deps) -> None:
    await f.workspace(deps, "globex-secret-client")
    await f.workspace(deps)
    shared = "shared.my.salesforce.com/integration"
    await connectors.apply_connector(
        deps.ctx, "globex-secret-client", doc("globex-crm", account=shared), f.CLI
    )
    with pytest.raises(Conflict) as raised:
        await connectors.apply_connector(deps.ctx, "acme", doc(account=shared), f.CLI)
    assert "globex" not in raised.value.message.lower()
    assert "another workspace" in raised.value.message
    assert await connectors.list_connectors(deps.ctx, "acme") == []
    assert await events(deps) == []


async def test_an_existing_connector_cannot_move_onto_a_foreign_account(deps: Deps) -> None:
    await f.workspace(deps, "globex-secret-client")
    await f.workspace(deps)
    await connectors.apply_connector(
        deps.ctx, "globex-secret-client", doc(account="globex.salesforce.com/x"), f.CLI
    )
    await connectors.apply_connector(deps.ctx, "acme", doc(), f.CLI)
    with pytest.raises(Conflict) as raised:
        await connectors.apply_connector(
            deps.ctx, "acme", doc(account="globex.salesforce.com/x"), f.CLI
        )
    assert "globex-secret-client" not in raised.value.message
    [mine] = await connectors.list_connectors(deps.ctx, "acme")
    assert mine.account == "acme.my.salesforce.com/integration"
    assert [e.action for e in await events(deps)] == ["connector.connected"]


async def test_connectors_of_another_workspace_are_out_of_reach(deps: Deps) -> None:
    await f.workspace(deps)
    await f.workspace(deps, "globex")
    await connectors.apply_connector(deps.ctx, "acme", doc(), f.CLI)
    await connectors.apply_connector(deps.ctx, "globex", doc(account="globex/crm"), f.CLI)
    await f.connector(deps, "globex", "theirs")
    await report(deps, Report.ERROR, "down")
    with pytest.raises(NotFound):
        await report(deps, Report.ERROR, "down", key="theirs")
    assert {c.key: c.health for c in await connectors.list_connectors(deps.ctx, "globex")} == {
        "crm": Health.OK,
        "theirs": Health.OK,
    }
    assert await events(deps, "globex", "connector.health") == []


# ---- regulated workspaces ------------------------------------------------------------------


async def test_in_a_regulated_workspace_owners_admins_and_operators_connect(
    deps: Deps,
) -> None:
    await f.workspace(deps, regulated=True)
    allowed: list[tuple[Actor, str | None, str]] = [
        # actor, actor named in the document, what the audit log records
        (f.CLI, None, "cli"),
        (f.CLI, f.OWNER, f"cli as slack:{f.OWNER}"),
        (ENGINE, f.ADMIN, f"api:engine as slack:{f.ADMIN}"),
        (Actor.slack(f.ADMIN), None, f"slack:{f.ADMIN}"),
    ]
    for n, (actor, named, _) in enumerate(allowed):
        first = doc(f"crm-{n}", account=f"acme/crm-{n}", actor=named)
        await connectors.apply_connector(deps.ctx, "acme", first, actor)
        changed = doc(f"crm-{n}", account=f"acme/crm-{n}", actor=named, scopes=["write"])
        await connectors.apply_connector(deps.ctx, "acme", changed, actor)
    assert [(e.action, e.actor) for e in await events(deps)] == [
        (action, audited)
        for _, _, audited in allowed
        for action in ("connector.connected", "connector.changed")
    ]


async def test_in_a_regulated_workspace_others_may_not_connect_or_change(deps: Deps) -> None:
    await f.workspace(deps, regulated=True)
    await connectors.apply_connector(deps.ctx, "acme", doc("existing", account="acme/x"), f.CLI)
    refused: list[tuple[Actor, str | None]] = [
        (ENGINE, None),  # an API key alone acts as a member
        (ENGINE, f.MEMBER),
        (ENGINE, STRANGER),
        (f.CLI, f.MEMBER),  # the document names who connects: that person's role applies
        (Actor.slack(f.MEMBER), None),
        (Actor.slack(STRANGER), None),
    ]
    for actor, named in refused:
        for document in (
            doc("new", account="acme/new", actor=named),
            doc("existing", account="acme/x", actor=named, scopes=["write"]),
        ):
            with pytest.raises(Forbidden, match="regulated"):
                await connectors.apply_connector(deps.ctx, "acme", document, actor)
    [only] = await connectors.list_connectors(deps.ctx, "acme")
    assert (only.key, only.scopes) == ("existing", ["read"])
    assert [(e.action, e.actor) for e in await events(deps)] == [("connector.connected", "cli")]


async def test_without_regulation_the_engine_may_connect(deps: Deps) -> None:
    await f.workspace(deps)
    applied = await connectors.apply_connector(deps.ctx, "acme", doc(), ENGINE)
    assert applied.created
    with pytest.raises(Forbidden):
        await workspaces.configure_workspace(
            deps.ctx, "acme", workspaces.WorkspaceSettings(regulated=True), ENGINE
        )
    await workspaces.configure_workspace(
        deps.ctx, "acme", workspaces.WorkspaceSettings(regulated=True), f.CLI
    )
    with pytest.raises(Forbidden):
        await connectors.apply_connector(deps.ctx, "acme", doc(scopes=["write"]), ENGINE)


# ---- health --------------------------------------------------------------------------------


async def test_health_transitions_are_audited_once_and_alerted_on_crossings(
    deps: Deps, clock: FakeClock
) -> None:
    ws = await f.workspace(deps)
    await connectors.apply_connector(deps.ctx, "acme", doc(), f.CLI)
    assert await report(deps, Report.OK) is Health.OK
    assert await events(deps, prefix="connector.health") == []

    clock.advance(timedelta(minutes=1))
    assert await report(deps, Report.ERROR, "401 token revoked") is Health.NEEDS_ATTENTION
    broke_at = clock.now()
    for error in ("401 token revoked", "401 again", None):
        clock.advance(timedelta(minutes=1))
        assert await report(deps, Report.ERROR, error) is Health.NEEDS_ATTENTION
    [connector] = await connectors.list_connectors(deps.ctx, "acme")
    assert connector.health_since == broke_at
    assert connector.last_checked_at == clock.now()
    assert connector.last_error == "error"  # the latest report's, even without a message

    clock.advance(timedelta(minutes=1))
    assert await report(deps, Report.OK) is Health.OK
    [connector] = await connectors.list_connectors(deps.ctx, "acme")
    assert (connector.health_since, connector.last_error) == (clock.now(), None)

    changes = await events(deps, prefix="connector.health")
    assert [(e.action, e.actor, data_of(e)) for e in changes] == [
        (
            "connector.health_changed",
            "api:engine",
            {"before": "ok", "after": "needs_attention", "error": "401 token revoked"},
        ),
        (
            "connector.health_changed",
            "api:engine",
            {"before": "needs_attention", "after": "ok", "error": None},
        ),
    ]
    alerts = await posts(deps)
    assert [(p["channel"], p["event"], p["data"]["health"]) for p in alerts] == [
        (ws.ops_channel, "connector.needs_attention", "needs_attention"),
        (ws.ops_channel, "connector.recovered", "ok"),
    ]
    assert alerts[0]["data"]["error"] == "401 token revoked"
    assert alerts[0]["data"]["connector"] == "crm"


async def test_a_disconnected_connector_stays_disconnected_on_errors(deps: Deps) -> None:
    await f.workspace(deps)
    await connectors.apply_connector(deps.ctx, "acme", doc(), f.CLI)
    assert await report(deps, Report.ERROR, "timeout") is Health.NEEDS_ATTENTION
    assert await report(deps, Report.DISCONNECTED, "revoked") is Health.DISCONNECTED
    assert await report(deps, Report.ERROR, "timeout") is Health.DISCONNECTED
    assert await report(deps, Report.DISCONNECTED) is Health.DISCONNECTED
    assert await report(deps, Report.OK) is Health.OK
    assert await report(deps, Report.DISCONNECTED, "gone") is Health.DISCONNECTED
    transitions = [
        (data_of(e)["before"], data_of(e)["after"])
        for e in await events(deps, prefix="connector.health")
    ]
    assert transitions == [
        ("ok", "needs_attention"),
        ("needs_attention", "disconnected"),
        ("disconnected", "ok"),
        ("ok", "disconnected"),
    ]
    # needs attention → disconnected is still "not ok": no second alert
    assert [p["event"] for p in await posts(deps)] == [
        "connector.needs_attention",
        "connector.recovered",
        "connector.needs_attention",
    ]


async def test_alerts_go_to_the_approvals_channel_without_an_ops_channel(deps: Deps) -> None:
    await workspaces.create_workspace(
        deps.ctx,
        "acme",
        workspaces.WorkspaceSettings(name="Acme", approvals_channel="C0ACMEAPPR"),
        f.CLI,
    )
    await connectors.apply_connector(deps.ctx, "acme", doc(), f.CLI)
    await report(deps, Report.ERROR, "boom")
    assert [p["channel"] for p in await posts(deps)] == ["C0ACMEAPPR"]


async def test_an_alert_lists_the_affected_workflows_live_first(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.connector(deps, "acme", "erp")
    for key in ("a-draft", "b-paused", "c-pilot", "d-live", "e-live", "f-pilot"):
        await f.workflow(deps, key=key, status="pilot")
    await f.workflow(
        deps,
        key="unrelated",
        steps=[{"name": "x", "tool": "erp.read", "connector": "erp", "access": "read"}],
    )
    go_live: dict[str, Any] = {
        "sign_off": workflow_status.SignOff("Jane at Acme", "email 2026-01-02"),
        "rollback_plan": "pause it",
    }
    for key, target in [("a-draft", Status.DRAFT), ("b-paused", Status.PAUSED)]:
        await workflow_status.change_status(deps.ctx, "acme", key, target, f.CLI, reason="test")
    for key in ("d-live", "e-live"):
        await workflow_status.change_status(deps.ctx, "acme", key, Status.LIVE, f.CLI, **go_live)

    await report(deps, Report.ERROR, "rate limited", key="sheets")
    [alert] = [p for p in await posts(deps) if p["event"].startswith("connector.")]
    assert alert["data"]["workflows"] == [
        {"key": "d-live", "name": "D live", "status": "live"},
        {"key": "e-live", "name": "E live", "status": "live"},
        {"key": "c-pilot", "name": "C pilot", "status": "pilot"},
        {"key": "f-pilot", "name": "F pilot", "status": "pilot"},
        {"key": "a-draft", "name": "A draft", "status": "draft"},
        {"key": "b-paused", "name": "B paused", "status": "paused"},
    ]
    assert alert["data"]["toolkit"] == "google-sheets"
    await report(deps, Report.OK, key="sheets")
    recovered = [p for p in await posts(deps) if p["event"] == "connector.recovered"]
    assert [w["key"] for w in recovered[0]["data"]["workflows"]][:2] == ["d-live", "e-live"]


async def test_reporting_an_unknown_connector_is_not_found(deps: Deps) -> None:
    await f.workspace(deps)
    with pytest.raises(NotFound, match="no connector 'ghost'"):
        await report(deps, Report.ERROR, "x", key="ghost")
    with pytest.raises(NotFound):
        await connectors.report_health(deps.ctx, "nope", "crm", Report.OK, None, ENGINE)

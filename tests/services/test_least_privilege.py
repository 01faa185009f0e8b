"""Least privilege through the real services: a write through a read-only connector refused,
grants no step needs listed, and a widened grant audited and flagged on pending cards."""

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
from trame_bot.errors import InvalidInput
from trame_bot.sandbox.block_kit import block_errors
from trame_bot.services import cards, connectors, scopes, workflows
from trame_bot.slack.blocks.card import approval_card
from trame_bot.store.models import AuditEvent, OutboxMessage

READ_CRM = {"name": "Fetch", "tool": "salesforce.query", "connector": "crm", "access": "read"}
WRITE_CRM = {**READ_CRM, "name": "Update", "access": "write"}
WRITE_SHEETS = {"name": "Append", "tool": "sheets.append", "connector": "sheets", "access": "write"}


def crm(**overrides: Any) -> ConnectorDoc:
    doc = {"key": "crm", "toolkit": "salesforce", "account": "acme/crm", "scopes": ["read"]}
    return ConnectorDoc(**{**doc, **overrides})


async def card_updates(deps: Deps) -> list[str]:
    async with deps.db.reading() as session:
        rows = await session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.kind == "slack.card")
            .order_by(OutboxMessage.id)
        )
        return [row.payload["run_id"] for row in rows.scalars() if not row.payload.get("post")]


async def last_connector_event(deps: Deps) -> AuditEvent:
    async with deps.db.reading() as session:
        rows = await session.execute(
            select(AuditEvent)
            .where(AuditEvent.entity_type == "connector")
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        )
        return rows.scalar_one()


async def test_a_write_through_a_read_only_connector_is_refused_with_the_way_out(
    deps: Deps,
) -> None:
    await f.governed_workspace(deps)
    with pytest.raises(InvalidInput) as raised:
        await f.workflow(deps, steps=[READ_CRM, WRITE_SHEETS, WRITE_CRM])
    why = (
        "connector 'crm' is granted read only (scopes: read); grant write in the source system "
        "and re-apply the connector, or make the step read"
    )
    assert raised.value.fields == {"steps.2.access": why}
    assert str(raised.value) == f"workflow invoice-sync: steps.2.access: {why}"
    assert await workflows.list_workflows(deps.ctx, "acme") == []

    # granting write (to a target) in the connector lets the same document through
    await connectors.apply_connector(deps.ctx, "acme", crm(scopes=["read", "write:#ops"]), f.CLI)
    saved = await f.workflow(deps, steps=[READ_CRM, WRITE_SHEETS, WRITE_CRM])
    assert saved.version == 1


async def test_unrecorded_or_unknown_scopes_never_refuse(deps: Deps) -> None:
    await f.workspace(deps)
    await f.connector(deps, "acme", "crm", scopes=[])
    await f.connector(deps, "acme", "sheets", scopes=["read", "spreadsheets.edit"])
    saved = await f.workflow(deps, steps=[WRITE_CRM, WRITE_SHEETS])
    assert saved.key == "invoice-sync"


async def test_grants_no_step_needs_are_listed(deps: Deps) -> None:
    await f.workspace(deps)
    await f.connector(deps, "acme", "crm", scopes=["read", "write:#ops"])
    await f.connector(deps, "acme", "sheets", scopes=["read", "write:finance"])
    await f.connector(deps, "acme", "mail", scopes=["admin"])
    await f.connector(deps, "acme", "idle", scopes=["read"])
    await f.workflow(deps, steps=[READ_CRM, WRITE_SHEETS])
    listed = {
        g.connector.key: g.over_privileged for g in await scopes.list_connectors(deps.ctx, "acme")
    }
    assert listed == {
        "crm": ("write:#ops",),
        "idle": (),
        "mail": ("admin",),
        "sheets": (),
    }
    # a step that writes through crm (even in a draft) makes its write grant needed
    await f.workflow(deps, "acme", "crm-update", status="draft", steps=[WRITE_CRM])
    listed = {
        g.connector.key: g.over_privileged for g in await scopes.list_connectors(deps.ctx, "acme")
    }
    assert listed["crm"] == ()


async def test_widening_is_audited_and_flags_the_pending_cards_using_it(
    deps: Deps, clock: FakeClock
) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps)
    await f.workflow(deps, "acme", "sheets-only", steps=[WRITE_SHEETS])
    before = await f.request(deps)
    other = await f.request(deps, wf="sheets-only")
    queued = await card_updates(deps)

    clock.advance(timedelta(seconds=60))
    narrowed = await connectors.apply_connector(deps.ctx, "acme", crm(scopes=["read:#ops"]), f.CLI)
    assert (narrowed.changed, narrowed.widened) == (["scopes"], ())
    assert "widened" not in (await last_connector_event(deps)).summary
    assert await card_updates(deps) == queued

    applied = await connectors.apply_connector(
        deps.ctx, "acme", crm(scopes=["read", "write:#ops"]), f.CLI
    )
    assert applied.widened == ("read", "write:#ops")
    event = await last_connector_event(deps)
    assert event.action == "connector.changed"
    assert event.summary == (
        "connector crm (salesforce) changed: scopes; scopes widened: +read +write:#ops"
    )
    data = json.loads(event.data)
    assert (data["before"]["scopes"], data["after"]["scopes"], data["widened"]) == (
        ["read:#ops"],
        ["read", "write:#ops"],
        ["read", "write:#ops"],
    )
    # the pending run through crm gets its card re-rendered; the one through sheets only does not
    assert await card_updates(deps) == [*queued, before.id]
    card = await cards.run_card(deps.ctx, before.id)
    assert [(s.connector, s.scopes_widened) for s in card.steps] == [
        ("crm", True),
        ("sheets", False),
    ]
    assert not any(s.scopes_widened for s in (await cards.run_card(deps.ctx, other.id)).steps)
    _, blocks = approval_card(card)
    assert block_errors(blocks) == []
    lines = [
        line
        for block in blocks
        for line in block.get("text", {}).get("text", "").splitlines()
        if " via `" in line
    ]
    assert ["scopes widened since requested" in line for line in lines] == [True, False]

    # a run requested after the widening saw the new grant: nothing to flag
    clock.advance(timedelta(seconds=60))
    after = await f.request(deps)
    assert not any(s.scopes_widened for s in (await cards.run_card(deps.ctx, after.id)).steps)

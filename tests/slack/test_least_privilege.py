"""Least privilege in Slack, through signed requests into the running server: over-privileged
connectors in `/trame connectors`, and a pending card updated when a connector is widened."""

from __future__ import annotations

import json

from tests import factories as f
from tests.harness import Bot
from trame_bot.documents import ConnectorDoc
from trame_bot.sandbox.block_kit import block_errors
from trame_bot.services import connectors


async def test_connectors_flags_grants_no_step_needs(bot: Bot, acme: str) -> None:
    await f.connector(bot.deps, "acme", "mail", toolkit="gmail", scopes=["read", "admin"])
    await f.connector(bot.deps, "acme", "drive", toolkit="gdrive", scopes=["write:folder/x"])
    text = (await bot.command("connectors", user=f.MEMBER, channel=acme)).text
    lines = {line.split("`")[1]: line for line in text.splitlines() if line.count("`") >= 2}
    assert "over-privileged: `admin` (no step needs it)" in lines["mail"]
    assert "over-privileged: `write:folder/x`" in lines["drive"]
    # crm only reads and sheets' write grant is used by the workflow's Append step
    assert "over-privileged" not in lines["crm"] + lines["sheets"]


async def test_a_widened_connector_flags_the_pending_card(bot: Bot, acme: str) -> None:
    await f.request(bot.deps)
    await bot.delivered()
    assert "scopes widened" not in json.dumps(bot.card(acme).blocks)

    doc = ConnectorDoc(key="crm", toolkit="salesforce", account="acme/crm", scopes=["*"])
    applied = await connectors.apply_connector(bot.deps.ctx, "acme", doc, f.CLI)
    assert applied.widened == ("*",)
    await bot.delivered()
    card = bot.card(acme)
    assert block_errors(card.blocks) == []
    steps = [
        line
        for block in card.blocks
        for line in block.get("text", {}).get("text", "").splitlines()
        if " via `" in line
    ]
    assert ["scopes widened since requested" in line for line in steps] == [True, False]
    assert len(bot.fake.calls_to("chat.update")) == 1

"""The digest's "Over-privileged connectors" section: from the services, and valid Block Kit at
any size beside unhealthy connectors and pending runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Health
from trame_bot.domain.views import ConnectorLine, Overview
from trame_bot.sandbox.block_kit import MAX_BLOCK_TEXT_TOTAL, block_errors, block_text_length
from trame_bot.services import digests
from trame_bot.slack.blocks.digest import digest_message
from trame_bot.store.models import OutboxMessage

NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


async def posted(deps: Deps) -> list[dict[str, object]]:
    async with deps.db.reading() as session:
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        return [r.payload["data"] for r in rows if r.payload.get("event") == "digest"]


async def test_the_digest_lists_grants_no_step_needs(deps: Deps) -> None:
    await f.governed_workspace(deps)
    await f.workflow(deps)
    await f.connector(deps, "acme", "mail", toolkit="gmail", scopes=["read", "write", "admin"])
    await digests.send_digest_now(deps.ctx, "acme", Actor.slack(f.ADMIN))
    (data,) = await posted(deps)
    assert data["over_privileged_total"] == 1
    assert data["over_privileged"] == [{"key": "mail", "scopes": ["write", "admin"]}]
    text, blocks = digest_message(data)
    assert "All clear" not in text, "an over-privileged connector is worth a look"
    assert block_errors(blocks) == []
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert (
        "*Over-privileged connectors (1)* — grants no workflow step needs\n• `mail`: `write`, `admin`"
        in sections
    )


@pytest.mark.parametrize(("unhealthy", "flagged"), [(0, 1), (2000, 2000), (30, 500)])
def test_valid_block_kit_at_any_size(unhealthy: int, flagged: int) -> None:
    connectors = [
        ConnectorLine(
            f"c{i}-{'k' * 50}",
            "salesforce",
            Health.NEEDS_ATTENTION if i < unhealthy else Health.OK,
            NOW - timedelta(hours=i),
            "x" * 500,
            None,
            over_privileged=tuple(f"write:{'f' * 150}{j}" for j in range(8)) if i < flagged else (),
        )
        for i in range(max(unhealthy, flagged))
    ]
    view = Overview(
        workspace_key="acme",
        workspace_name="Acme",
        workflows=(),
        connectors=tuple(connectors),
        pending=(),
        failed_deliveries=0,
        audit_head="a" * 64,
        audit_events=12,
    )
    _, blocks = digest_message(digests.digest_data(view, "2026-06-10"))
    assert block_errors(blocks) == []
    assert block_text_length(blocks) <= MAX_BLOCK_TEXT_TOTAL
    assert f"Over-privileged connectors ({flagged})" in str(blocks)

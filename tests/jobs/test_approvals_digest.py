"""The digest's approvals sections: runs waiting longest (linked to their cards), declines since
the previous digest, paused workflows; gathered through the services, valid Block Kit at any size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import DeclineCategory, Health, Status, Verdict
from trame_bot.domain.values import counted
from trame_bot.domain.views import (
    ApprovalsDigest,
    ConnectorLine,
    DeclineView,
    Overview,
    PausedView,
    PendingView,
    WorkflowLine,
)
from trame_bot.sandbox.block_kit import MAX_BLOCK_TEXT_TOTAL, block_errors, block_text_length
from trame_bot.services import cards, decisions, digests, workflow_status
from trame_bot.slack.blocks.digest import digest_message
from trame_bot.store.models import OutboxMessage

DAY1 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)


async def posted(deps: Deps) -> list[dict[str, Any]]:
    async with deps.db.reading() as session:
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        return [r.payload["data"] for r in rows if r.payload.get("event") == "digest"]


async def decline(deps: Deps, run_id: str, category: DeclineCategory, reason: str) -> None:
    await decisions.decide(
        deps.ctx, run_id, Actor.slack(f.OWNER), Verdict.DECLINE, reason=reason, category=category
    )


async def test_waiting_declined_and_paused_sections(deps: Deps, clock: FakeClock) -> None:
    clock.set(DAY1)
    ws = await f.governed_workspace(deps)
    await f.workflow(deps)
    await f.workflow(deps, key="payroll-export", name="Payroll export")
    clock.advance(timedelta(minutes=10))
    early = await f.request(deps)
    clock.advance(timedelta(minutes=10))
    await decline(deps, early.id, DeclineCategory.WRONG_DATA, "amount is off")
    clock.set(datetime(2026, 6, 10, 9, 0, tzinfo=UTC))
    assert await digests.send_due_digests(deps.ctx) == 1
    (first,) = await posted(deps)
    assert first["declined_total"] == 1, "the first digest reports the last 24 hours"

    clock.set(datetime(2026, 6, 10, 12, 0, tzinfo=UTC))
    oldest = await f.request(deps, by=f.OTHER)
    assert await cards.record_card_posted(
        deps.ctx, oldest.id, ws.approvals_channel, "1781092800.123456"
    )
    clock.set(datetime(2026, 6, 10, 18, 0, tzinfo=UTC))
    await f.request(deps)  # its card is not posted yet
    clock.set(datetime(2026, 6, 10, 20, 0, tzinfo=UTC))
    late = await f.request(deps)
    await decline(
        deps, late.id, DeclineCategory.LOOKS_RISKY, "<!channel> sends *everything*\ntwice"
    )
    clock.set(datetime(2026, 6, 11, 7, 0, tzinfo=UTC))
    await workflow_status.change_status(
        deps.ctx, "acme", "payroll-export", Status.PAUSED, Actor.slack(f.ADMIN), reason="incident"
    )
    clock.set(datetime(2026, 6, 11, 8, 0, tzinfo=UTC))
    # An edit while paused moves `updated_at`, not the pause time the digest reports.
    await f.workflow(deps, key="payroll-export", name="Payroll export v2", status="paused")
    clock.set(datetime(2026, 6, 11, 9, 0, tzinfo=UTC))
    assert await digests.send_due_digests(deps.ctx) == 1

    _, data = await posted(deps)
    assert [(p["workflow"], p["requested_by"]) for p in data["pending"]] == [
        ("Invoice sync", f.OTHER),
        ("Invoice sync", f.MEMBER),
    ]
    assert data["declined_since"] == "2026-06-10T09:00:00+00:00"
    assert data["declined_total"] == 1
    (declined,) = data["declined"]
    assert (declined["declined_by"], declined["category"]) == ("U0OWNER", "looks_risky")
    assert data["paused"] == [
        {"key": "payroll-export", "name": "Payroll export v2", "since": "2026-06-11T07:00:00+00:00"}
    ]

    text, blocks = digest_message(data)
    assert "All clear" not in text
    assert block_errors(blocks) == []
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    waiting = next(s for s in sections if "pending*" in s)
    declines = next(s for s in sections if "declined*" in s)
    paused = next(s for s in sections if "paused*" in s)
    assert sections.index(waiting) < sections.index(declines) < sections.index(paused)
    link = f"https://slack.com/archives/{ws.approvals_channel}/p1781092800123456"
    assert waiting.splitlines()[1:] == [
        f"• <{link}|Invoice sync> for <@{f.OTHER}>, waiting 21h",
        f"• Invoice sync for <@{f.MEMBER}>, waiting 15h in <#{ws.approvals_channel}>"
        " (card not posted yet)",
    ]
    assert declines.splitlines()[1] == (
        f"• Invoice sync for <@{f.MEMBER}>, declined by <@{f.OWNER}> (`looks_risky`): "
        "_&lt;!channel&gt; sends ∗everything∗ twice_"
    )
    assert paused == "*1 workflow paused*\n• Payroll export v2 (`payroll-export`), paused for 2h"


async def test_nothing_pending_declined_or_paused_is_all_clear(
    deps: Deps, clock: FakeClock
) -> None:
    clock.set(DAY1)
    await f.governed_workspace(deps)
    await f.workflow(deps)
    clock.set(datetime(2026, 6, 10, 9, 0, tzinfo=UTC))
    assert await digests.send_due_digests(deps.ctx) == 1
    (data,) = await posted(deps)
    text, _ = digest_message(data)
    assert "All clear" in text


NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("count", "waiting"), [(0, 1), (1, 0), (3000, 3000)])
def test_valid_block_kit_at_any_size(count: int, waiting: int) -> None:
    """Thousands of unhealthy and over-privileged connectors, waiting runs, declines and paused
    workflows, with the longest names and reasons: still one valid message, each section cut
    with "…and N more"."""
    long = "w" * 200
    view = Overview(
        workspace_key="acme",
        workspace_name="Acme <!channel>",
        workflows=tuple(
            WorkflowLine(
                f"wf{i}-{long[:90]}",
                f"{long}{i}",
                Status.LIVE,
                1,
                False,
                0,
                (),
                tuple(f"c{j}" for j in range(i, count, 50)),
            )
            for i in range(50)
        ),
        connectors=tuple(
            ConnectorLine(
                f"c{i}",
                "x" * 60,
                Health.NEEDS_ATTENTION,
                NOW - timedelta(hours=i),
                "x" * 500,
                None,
                over_privileged=tuple(f"write:{'f' * 150}{j}" for j in range(8)),
            )
            for i in range(count)
        ),
        pending=tuple(
            PendingView(
                f"r{i}",
                "acme",
                "wf",
                long,
                f"engine:{long}",
                NOW - timedelta(minutes=i),
                0,
                1,
                "C0APPR0001",
                f"1781092800.{i:06d}" if i % 2 else None,
            )
            for i in range(waiting)
        ),
        failed_deliveries=0,
        audit_head="a" * 64,
        audit_events=12,
    )
    approvals = ApprovalsDigest(
        since=NOW - timedelta(days=1),
        declined_total=count,
        declined=tuple(
            DeclineView(long, f"engine:{long}", f.OWNER, NOW, "other", "<reason> " * 200)
            for _ in range(min(count, digests.MAX_DECLINED))
        ),
        paused=tuple(PausedView(f"p{i}-{long[:90]}", long, NOW) for i in range(count)),
    )
    text, blocks = digest_message(digests.digest_data(view, "2026-06-10", approvals, NOW))
    assert block_errors(blocks) == []
    assert block_text_length(blocks) <= MAX_BLOCK_TEXT_TOTAL
    assert "<!channel>" not in text
    assert ("All clear" in text) == (count == 0 and waiting == 0)
    if count > 1000:
        assert str(blocks).count("more_") >= 4, "waiting, declined, paused, over-privileged cut"
    if count:
        rendered = str(blocks)
        assert f"{counted(count, 'run')} declined" in rendered
        assert f"{counted(count, 'workflow')} paused" in rendered
        assert not waiting or f"{counted(waiting, 'approval')} pending" in rendered

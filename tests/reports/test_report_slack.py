"""`/trame report` through signed Slack requests into the running server: acked at once, then
the PDF and its export posted in the channel through the fake Slack's file upload."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from tests import factories as f
from tests.harness import Bot, eventually
from tests.reports.scenario import DECLINE_REASON, incident
from trame_bot.clock import FakeClock
from trame_bot.domain.audit_file import verify_lines
from trame_bot.services import workspaces


@pytest.fixture
async def channel(bot: Bot, clock: FakeClock) -> str:
    await incident(bot.deps, clock)
    return (await workspaces.get_workspace(bot.deps.ctx, "acme")).approvals_channel


async def test_report_posts_the_pdf_and_its_export(bot: Bot, channel: str) -> None:
    answer = await bot.command(
        "report workflow:invoice-sync 2026-01-05T11:00 2026-01-06T16:00",
        user=f.OWNER,
        channel=channel,
    )
    assert answer.status == 200
    assert "Preparing the incident report" in answer.text

    async def posted() -> bool:
        return any(m.files for m in bot.fake.messages(channel))

    await eventually(posted)
    (message,) = [m for m in bot.fake.messages(channel) if m.files]
    names = sorted(file.name for file in message.files)
    assert names == [
        "incident-acme-workflow-invoice-sync-20260105-20260106.jsonl",
        "incident-acme-workflow-invoice-sync-20260105-20260106.pdf",
    ]
    assert "audit verify --file" in message.text
    stored = {file.name: bot.fake.files[file.id].content for file in message.files}
    pdf, export = (stored[name] for name in sorted(stored, reverse=True))
    assert pdf is not None
    assert export is not None
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert DECLINE_REASON in text
    assert "1 h 50 min" in text
    assert verify_lines(export.decode().splitlines(keepends=True)).ok

    async def answered() -> bool:
        return any("report is in the channel" in (r.text or "") for r in bot.fake.responses)

    await eventually(answered)


@pytest.mark.parametrize(
    ("text", "user", "expected"),
    [
        ("report workflow:invoice-sync", f.MEMBER, "needs the admin role"),
        ("report workflow:nope", f.OWNER, "no workflow 'nope'"),
        ("report", f.OWNER, "say what the report is about"),
        ("report workflow:invoice-sync 2026-01-06 2026-01-05", f.OWNER, "before it starts"),
    ],
)
async def test_report_refusals_reach_the_person(
    bot: Bot, channel: str, text: str, user: str, expected: str
) -> None:
    answer = await bot.command(text, user=user, channel=channel)
    assert answer.status == 200

    async def told() -> bool:
        replies = [answer.text, *(r.text or "" for r in bot.fake.responses)]
        return any(expected in reply for reply in replies)

    await eventually(told)
    assert not any(m.files for m in bot.fake.messages(channel))

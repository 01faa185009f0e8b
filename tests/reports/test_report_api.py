"""`GET /api/v1/audit/report` through the real server: the PDF, the Markdown and the export,
and each refusal with its status."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from tests.harness import Bot
from tests.reports.scenario import DECLINE_REASON, incident
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.domain.audit_file import verify_lines
from trame_bot.services import workspaces
from trame_bot.store.models import AuditEvent


@pytest.fixture
async def report_url(bot: Bot, clock: FakeClock) -> tuple[str, dict[str, str], dict[str, str]]:
    """The report's URL, the key's headers, and the scenario's window as query values."""
    since, until = await incident(bot.deps, clock)
    _, token = await workspaces.create_api_key(bot.deps.ctx, "acme", "engine-ops", Actor.cli())
    base = bot.url.removesuffix("/slack/events") + "/api/v1/audit/report"
    window = {"since": since.isoformat(), "until": until.isoformat()}
    return base, {"Authorization": f"Bearer {token}"}, window


async def get(
    bot: Bot, url: str, headers: dict[str, str], **query: str
) -> tuple[int, dict[str, str], bytes]:
    async with bot.session.get(f"{url}?{urlencode(query)}", headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


async def test_the_pdf_markdown_and_export(
    bot: Bot, report_url: tuple[str, dict[str, str], dict[str, str]]
) -> None:
    url, headers, window = report_url
    status, head, body = await get(bot, url, headers, entity="workflow:invoice-sync", **window)
    assert status == 200
    assert head["Content-Type"] == "application/pdf"
    assert head["Content-Disposition"] == (
        'attachment; filename="incident-acme-workflow-invoice-sync-20260105-20260106.pdf"'
    )
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)
    assert DECLINE_REASON in text
    assert "2 h 12 min" in text
    status, head, body = await get(bot, url, headers, entity="connector:crm", format="md", **window)
    assert status == 200
    assert head["Content-Type"] == "text/markdown; charset=utf-8"
    assert body.decode().startswith("# Incident report: crm (salesforce) (connector:crm)")
    status, head, body = await get(
        bot, url, headers, entity="workflow:invoice-sync", format="jsonl", **window
    )
    assert status == 200
    assert head["Content-Type"] == "application/x-ndjson"
    assert verify_lines(body.decode().splitlines(keepends=True)).ok
    async with bot.deps.db.reading() as session:
        reported = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "audit.exported", AuditEvent.actor == "api:engine-ops")
        )
    assert reported == 3


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"entity": "workflow:nope"}, 404, "no workflow 'nope'"),
        ({"entity": "run:abc"}, 422, "a report is about a workflow or a connector"),
        ({}, 422, "entity=workflow:<key> or connector:<key>"),
        ({"entity": "workflow:invoice-sync", "format": "docx"}, 422, "format is pdf, md or jsonl"),
        (
            {"entity": "workflow:invoice-sync", "since": "2026-01-06", "until": "2026-01-05"},
            422,
            "before it starts",
        ),
    ],
)
async def test_refusals_say_why(
    bot: Bot,
    report_url: tuple[str, dict[str, str], dict[str, str]],
    query: dict[str, str],
    status: int,
    message: str,
) -> None:
    url, headers, _ = report_url
    got, head, body = await get(bot, url, headers, **query)
    assert got == status
    assert head["Content-Type"].startswith("application/json")
    assert message in body.decode()

"""The incident report as a client receives it: the PDF's text read back with pypdf, the
Markdown, and the PDF's pages rendered to PNG (tests/reports/screenshots/) for a person to see."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests import factories as f
from tests.reports.scenario import DECLINE_REASON, PAUSE_REASON, incident
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.reports.render import render
from trame_bot.services import reports
from trame_bot.services.reports import ReportBundle, ReportFormat

SCREENSHOTS = Path(__file__).parent / "screenshots"
PDFTOPPM = "/usr/bin/pdftoppm"


@pytest.fixture
async def bundle(deps: Deps, clock: FakeClock) -> ReportBundle:
    since, until = await incident(deps, clock)
    return await reports.incident_report(
        deps.ctx,
        "acme",
        "workflow:invoice-sync",
        since,
        until,
        ReportFormat.PDF,
        Actor.slack(f.OWNER),
    )


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_the_pdf_reads_as_the_incident(bundle: ReportBundle) -> None:
    rendered = render(bundle, ReportFormat.PDF)
    assert rendered.name == "incident-acme-workflow-invoice-sync-20260105-20260106.pdf"
    assert rendered.media_type == "application/pdf"
    text = pdf_text(rendered.content)
    flat = " ".join(text.split())
    for expected in (
        "Incident report: Invoice sync",
        "Window: 2026-01-05 11:00 to 2026-01-06 16:00 (UTC)",
        "workflow invoice-sync was paused for 1 h 50 min in 2 stretches",
        "connector crm was unhealthy for 2 h 12 min in 2 stretches",
        "connector sheets was never unhealthy",
        "5 runs requested, 1 approved, 1 declined, 1 expired, 1 cancelled, 1 refused by the gate",
        DECLINE_REASON,
        "Wrong data",
        PAUSE_REASON,
        "trigger nightly disabled",
        "before 2026-01-05 11:00",
        "U0OWNER (Slack)",
    ):
        assert expected.lower() in flat.lower(), expected
    anchors = bundle.report.anchors
    assert anchors is not None
    assert anchors.first_prev_hash in text
    assert anchors.last_hash in text
    for entry in bundle.report.timeline:
        assert entry.hash in text, f"event #{entry.seq}'s hash"
        assert entry.summary in flat
    assert "trame-bot audit verify --file" in flat


def test_the_markdown_says_the_same(bundle: ReportBundle) -> None:
    rendered = render(bundle, ReportFormat.MARKDOWN, "beside.jsonl")
    text = rendered.content.decode()
    assert rendered.media_type == "text/markdown; charset=utf-8"
    assert text.startswith("# Incident report: Invoice sync (workflow:invoice-sync)")
    assert "| Declined by |" in text
    assert DECLINE_REASON in text
    assert "paused for 1 h 50 min in 2 stretches" in text
    anchors = bundle.report.anchors
    assert anchors is not None
    assert (
        f"```\ntrame-bot audit verify --file beside.jsonl \\\n"
        f"    --after {anchors.first_prev_hash} \\\n"
        f"    --last {anchors.last_hash}\n```"
    ) in text
    assert all(f"`{e.hash}`" in text for e in bundle.report.timeline)


@pytest.mark.skipif(not Path(PDFTOPPM).exists(), reason="poppler-utils (pdftoppm) not installed")
def test_the_pdf_renders_to_png_for_a_person_to_look_at(bundle: ReportBundle) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    pdf = SCREENSHOTS / "incident-report.pdf"
    pdf.write_bytes(render(bundle, ReportFormat.PDF).content)
    for old in SCREENSHOTS.glob("incident-report-*.png"):
        old.unlink()
    subprocess.run(
        [PDFTOPPM, "-png", "-r", "80", str(pdf), str(SCREENSHOTS / "incident-report")],
        check=True,
        timeout=30,
    )
    pages = sorted(SCREENSHOTS.glob("incident-report-*.png"))
    assert pages, "pdftoppm wrote no page"
    assert all(page.read_bytes().startswith(b"\x89PNG") for page in pages)
    assert shutil.which("pdftoppm") or Path(PDFTOPPM).exists()

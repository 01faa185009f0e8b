"""`trame-bot audit report` through the entry point: the PDF or Markdown and its export beside
it, which `audit verify --file` then checks offline; bad input is one line and exit 1."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pypdf import PdfReader

from tests.reports.scenario import DECLINE_REASON, incident
from trame_bot.bootstrap import Deps
from trame_bot.cli import cli
from trame_bot.clock import FakeClock


@pytest.fixture
async def window(deps: Deps, clock: FakeClock) -> tuple[str, str]:
    since, until = await incident(deps, clock)
    return since.isoformat(), until.isoformat()


def trame(database_url: str | None, *args: str) -> Result:
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    return CliRunner().invoke(cli, list(args), env=env)


def test_a_pdf_report_and_its_export_that_verifies_offline(
    window: tuple[str, str], database_url: str, tmp_path: Path
) -> None:
    since, until = window
    out = tmp_path / "incident.pdf"
    made = trame(
        database_url,
        *("audit", "report", "acme", "--entity", "workflow:invoice-sync"),
        *("--since", since, "--until", until, "-o", str(out)),
    )
    assert made.exit_code == 0, made.stderr
    export = tmp_path / "incident.jsonl"
    assert made.stdout == (
        f"wrote {out} (15 events) and its export {export} (15 events); "
        f"check it with: trame-bot audit verify --file {export}\n"
    )
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(out.read_bytes())).pages)
    assert DECLINE_REASON in text
    assert "trame-bot audit verify --file incident.jsonl" in text
    lines = text.splitlines()
    after = lines[lines.index(next(line for line in lines if line.startswith("First event #"))) + 1]
    last = lines[lines.index(next(line for line in lines if line.startswith("Last event #"))) + 1]
    checked = trame(
        None, "audit", "verify", "--file", str(export), "--after", after, "--last", last
    )
    assert checked.exit_code == 0, checked.stderr
    assert checked.stdout.startswith("export verified: 15 events of workspace acme")


def test_a_markdown_report(window: tuple[str, str], database_url: str, tmp_path: Path) -> None:
    since, until = window
    out = tmp_path / "incident.md"
    made = trame(
        database_url,
        *("audit", "report", "acme", "--entity", "connector:crm", "--format", "md"),
        *("--since", since, "--until", until, "-o", str(out)),
    )
    assert made.exit_code == 0, made.stderr
    assert out.read_text().startswith("# Incident report: crm (salesforce) (connector:crm)")
    assert (tmp_path / "incident.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--entity", "workflow:nope"), "error: no workflow 'nope' in this workspace"),
        (("--entity", "run:abc"), "a report is about a workflow or a connector"),
        (
            ("--entity", "workflow:invoice-sync", "--since", "2026-01-06", "--until", "2026-01-05"),
            "before it starts",
        ),
        (("--entity", "workflow:invoice-sync", "-o", "x.jsonl"), "give -o a .pdf or .md file"),
    ],
)
def test_bad_input_is_one_line(
    window: tuple[str, str], database_url: str, args: tuple[str, ...], message: str
) -> None:
    result = trame(database_url, "audit", "report", "acme", *args)
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert message in line

"""Least privilege through the CLI's entry point: a write through a read-only connector refused
in one line, the connector list's over-privileged column, a widening said when applied."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from trame_bot.cli import cli

EXAMPLES = Path(__file__).parents[2] / "examples"
WRITE_TO_CRM = """\
key: crm-update
name: CRM update
steps:
  - {name: Update, tool: salesforce.update, connector: acme-salesforce, access: write}
"""


@pytest.fixture
def run(database_url: str) -> object:
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(
            cli, list(args), env={"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
        )
        if ok:
            assert result.exit_code == 0, (result.output, result.stderr)
        return result

    return invoke


def rows(result: Result) -> dict[str, dict[str, str]]:
    header, *lines = result.output.splitlines()
    names = header.split()
    starts = [header.index(name) for name in names]
    ends = [*starts[1:], None]
    return {
        line[: starts[1]].strip(): {
            name: line[start:end].strip()
            for name, start, end in zip(names, starts, ends, strict=True)
        }
        for line in lines
    }


def test_least_privilege_from_the_command_line(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("workspace", "create", "acme", "--name", "Acme", "--approvals-channel", "C0APPROVE")
    run("connector", "apply", "acme", str(EXAMPLES / "connectors.yaml"))
    run("workflow", "apply", "acme", str(EXAMPLES / "workflows.yaml"))

    listed = rows(run("connector", "list", "acme"))
    assert {key: row["OVER-PRIVILEGED"] for key, row in listed.items()} == {
        "acme-salesforce": "",
        "acme-sheets": "",
    }

    doc = tmp_path / "crm-update.yaml"
    doc.write_text(WRITE_TO_CRM)
    refused = run("workflow", "apply", "acme", str(doc), ok=False)
    assert refused.exit_code != 0
    assert refused.stderr.strip().splitlines() == [
        "error: workflow crm-update: steps.0.access: connector 'acme-salesforce' is granted read only "
        "(scopes: read); grant write in the source system and re-apply the connector, or make "
        "the step read"
    ]

    widen = tmp_path / "crm.yaml"
    widen.write_text(
        "key: acme-salesforce\ntoolkit: salesforce\n"
        "account: acme.my.salesforce.com/integration-user\nscopes: [read, write, admin]\n"
    )
    applied = run("connector", "apply", "acme", str(widen))
    assert applied.output.strip() == (
        "connector acme-salesforce: updated: scopes (scopes widened: +write +admin)"
    )
    listed = rows(run("connector", "list", "acme"))
    assert listed["acme-salesforce"]["OVER-PRIVILEGED"] == "write,admin"

    run("workflow", "apply", "acme", str(doc))
    listed = rows(run("connector", "list", "acme"))
    assert listed["acme-salesforce"]["OVER-PRIVILEGED"] == "admin"

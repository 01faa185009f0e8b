"""The `trame-bot` command line, driven through its entry point on a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from trame_bot.cli import cli

EXAMPLES = Path(__file__).parents[2] / "examples"


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


@pytest.fixture
def acme(run) -> None:  # type: ignore[no-untyped-def]
    run(
        "workspace",
        "create",
        "acme",
        "--name",
        "Acme",
        "--approvals-channel",
        "C0APPROVE",
        "--ops-channel",
        "C0OPS",
        "--timezone",
        "Europe/Paris",
        "--approval-ttl",
        "12h",
    )
    run("member", "set", "acme", "U0OWNER", "owner")
    run("member", "set", "acme", "U0MEMBER1", "member")
    run("connector", "apply", "acme", str(EXAMPLES / "connectors.yaml"))
    run("workflow", "apply", "acme", str(EXAMPLES / "workflows.yaml"))


def last_state(result: Result) -> str:
    return result.output.splitlines()[0].split(": ", 1)[1]


def test_the_gate_answers_for_each_status_source_and_fault(run, acme) -> None:  # type: ignore[no-untyped-def]
    assert (
        last_state(run("run", "request", "acme", "invoice-sync", "--by", "U0MEMBER1")) == "pending"
    )
    assert (
        last_state(run("run", "request", "acme", "Invoice Sync", "--trigger", "nightly"))
        == "pending"
    )
    run(
        "workflow",
        "status",
        "acme",
        "invoice-sync",
        "paused",
        "--reason",
        "client asked",
        "--by",
        "U0MEMBER1",
    )
    refused = run("run", "request", "acme", "invoice-sync", "--trigger", "nightly")
    assert last_state(refused) == "rejected"
    assert "paused" in refused.output
    assert last_state(run("run", "request", "acme", "invoice-sync")) == "pending"
    denied = run(
        "workflow", "status", "acme", "invoice-sync", "pilot", "--by", "U0MEMBER1", ok=False
    )
    assert denied.exit_code == 1
    assert "error: moving a workflow from paused to pilot needs the admin role" in denied.stderr
    run("workflow", "status", "acme", "invoice-sync", "pilot", "--by", "U0OWNER")
    run("connector", "health", "acme", "acme-sheets", "error", "--error", "token revoked")
    unhealthy = run("run", "request", "acme", "invoice-sync")
    assert last_state(unhealthy) == "rejected"
    assert "acme-sheets" in unhealthy.output
    run("connector", "health", "acme", "acme-sheets", "ok")
    run("workflow", "trigger", "acme", "invoice-sync", "nightly", "off", "--by", "U0MEMBER1")
    assert (
        "disabled" in run("run", "request", "acme", "invoice-sync", "--trigger", "nightly").output
    )
    assert "verified" in run("audit", "verify", "acme").output
    assert "verified" in run("audit", "verify", "acme", "--full").output


def test_going_live_needs_sign_off_and_an_approved_pilot_run(run, acme) -> None:  # type: ignore[no-untyped-def]
    refused = run("workflow", "status", "acme", "invoice-sync", "live", ok=False)
    assert "sign-off" in refused.stderr
    live = (
        "workflow",
        "status",
        "acme",
        "invoice-sync",
        "live",
        "--signed-off-by",
        "Jane (client)",
        "--evidence",
        "mail of 2026-11-20",
        "--rollback-plan",
        "pause, then demote to pilot",
    )
    assert "approved pilot run" in run(*live, ok=False).stderr
    pending = run("run", "request", "acme", "invoice-sync", "--by", "U0MEMBER1")
    run_id = pending.output.split()[1].rstrip(":")
    run("run", "decide", "acme", run_id, "approve", "--by", "U0OWNER")
    assert "is now live" in run(*live).output
    assert (
        last_state(run("run", "request", "acme", "invoice-sync", "--trigger", "nightly"))
        == "approved"
    )
    assert (
        "cannot go live directly"
        in run("workflow", "status", "acme", "lead-digest", "live", ok=False).stderr
    )


def test_api_keys_are_shown_once_and_stored_hashed(run, acme) -> None:  # type: ignore[no-untyped-def]
    created = run("apikey", "create", "acme", "--name", "engine")
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("trame_")
    assert len(token) > 30
    listing = run("apikey", "list", "acme").output
    assert token not in listing
    assert "active" in listing
    run("apikey", "revoke", "acme", "engine")
    assert "revoked" in run("apikey", "list", "acme").output
    assert "no active API key" in run("apikey", "revoke", "acme", "engine", ok=False).stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("workflow", "list", "nope"), "no workspace 'nope'"),
        (("workflow", "show", "acme", "ghost"), "no workflow 'ghost'"),
        (
            ("workspace", "create", "acme", "--name", "x", "--approvals-channel", "C0X"),
            "already exists",
        ),
        (("workspace", "set", "acme", "--timezone", "Mars/Base"), "unknown time zone"),
        (("workspace", "set", "acme", "--approval-ttl", "soon"), "not a duration"),
        (("member", "remove", "acme", "U0OWNER"), "at least one owner"),
        (("audit", "list", "acme", "--entity", "bogus"), "is not an entity"),
        (("audit", "list", "acme", "--since", "yesterday-ish"), "is not a time"),
        (("connector", "apply", "acme", "/nonexistent.yaml"), "cannot read"),
    ],
)
def test_errors_are_one_line_without_traceback(
    run, acme, args: tuple[str, ...], message: str
) -> None:  # type: ignore[no-untyped-def]
    result = run(*args, ok=False)
    assert result.exit_code != 0
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_documents_name_the_field(run, acme, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "key: broken\nname: Broken\nsteps:\n  - {name: x, tool: t, connector: elsewhere, access: write}\n"
    )
    assert (
        "'elsewhere' is not a connector of this workspace"
        in run("workflow", "apply", "acme", str(bad), ok=False).stderr
    )
    bad.write_text("key: broken\nname: Broken\nsteps: []\n")
    assert "steps" in run("workflow", "apply", "acme", str(bad), ok=False).stderr
    bad.write_text("key: [unclosed\n")
    assert "not valid YAML" in run("workflow", "apply", "acme", str(bad), ok=False).stderr


def test_bad_configuration_stops_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["workspace", "list"], env={"DATABASE_URL": "mysql://x/y"})
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: DATABASE_URL scheme 'mysql' is not supported: use sqlite:/// or postgresql://"
    )


def test_audit_export_to_a_file_and_filters(run, acme, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "audit.jsonl"
    result = run(
        "audit",
        "export",
        "acme",
        "--entity",
        "workflow:invoice-sync",
        "--format",
        "jsonl",
        "-o",
        str(out),
    )
    assert "wrote 1 event to" in result.stderr
    assert '"action": "workflow.created"' in out.read_text()
    listing = run("audit", "list", "acme", "--entity", "workspace:acme").output
    assert "audit.exported" in listing

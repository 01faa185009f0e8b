"""Each command loads what it uses: a command's module is imported when it runs, so the audit
commands, run as an operator runs them (a fresh process, a real database), never load Slack,
aiohttp, the scheduler, the PDF report or Alembic."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

import trame_bot.cli
from trame_bot.cli import cli
from trame_bot.cli.app import COMMANDS, LazyGroup
from trame_bot.store.migrate import _shipped_head, head_revision

HEAVY = (
    "aiohttp",
    "alembic",
    "apscheduler",
    "fpdf",
    "matplotlib",
    "pydantic",
    "slack_bolt",
    "slack_sdk",
)
RUN = """
import json, sys
from trame_bot.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="trame-bot", standalone_mode=False)
finally:
    loaded = sorted({name.split(".")[0] for name in sys.modules})
    print(json.dumps(loaded), file=sys.stderr)
"""


def loaded_by(database_url: str, *args: str) -> list[str]:
    """Run `trame-bot ARGS` in a fresh interpreter; the top-level packages it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args],
        env={
            "DATABASE_URL": database_url,
            "LOG_LEVEL": "WARNING",
            **{name: os.environ[name] for name in ("PATH", "PYTHONPATH") if name in os.environ},
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return loaded


def test_the_audit_commands_load_no_slack_server_or_report(
    database_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    created = CliRunner().invoke(
        cli,
        ["workspace", "create", "acme", "--name", "Acme", "--approvals-channel", "C0APPROVE"],
        env=env,
    )
    assert created.exit_code == 0, created.output
    export = tmp_path / "audit.jsonl"
    for args in (
        ("audit", "list", "acme"),
        ("audit", "export", "acme", "-o", str(tmp_path / "audit.csv")),
        ("audit", "export", "acme", "--format", "jsonl", "-o", str(export)),
        ("audit", "verify", "acme"),
        ("audit", "verify", "--file", str(export)),
    ):
        loaded = loaded_by(database_url, *args)
        assert [name for name in HEAVY if name in loaded] == [], args


def test_every_command_is_found_where_the_group_looks_for_it() -> None:
    """`COMMANDS` names each top-level command's module: importing them all registers the
    same commands, and each lazy group's own table is complete too."""
    for module in pkgutil.iter_modules(trame_bot.cli.__path__):
        importlib.import_module(f"trame_bot.cli.{module.name}")
    assert set(cli.commands) == set(COMMANDS)
    groups = [c for c in cli.commands.values() if isinstance(c, click.Group)]
    for group in groups:
        if isinstance(group, LazyGroup):
            assert set(group.lazy) <= set(group.commands), group.name
    assert "report" in cli.commands["audit"].commands  # type: ignore[attr-defined]


def test_the_schema_check_finds_the_head_alembic_finds() -> None:
    assert _shipped_head() == head_revision()

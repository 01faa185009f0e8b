"""A database that was never migrated, or is at another revision, is named as such, with the
fix, by every command that uses it, and `scheduler` and `serve` refuse to start on it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.blank_database import blank_database
from trame_bot.cli import cli
from trame_bot.store.migrate import head_revision, upgrade

FIX = "run `trame-bot db upgrade`"


@pytest.fixture
def blank(tmp_path: Path) -> Iterator[str]:
    with blank_database(tmp_path) as url:
        yield url


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": url, "LOG_LEVEL": "INFO"})


def one_line(result: Result) -> str:
    """What the command said, checked to be a single line on stderr and nothing on stdout."""
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


COMMANDS = [
    ("workflow", "list", "acme"),
    ("workspace", "list"),
    ("member", "set", "acme", "U0OWNER", "owner"),
    ("audit", "verify", "acme"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_database_never_migrated_is_named_with_the_fix(blank: str, command: tuple[str]) -> None:
    result = run(blank, *command)
    assert result.exit_code == 2
    line = one_line(result)
    assert line == f"error: the database has no trame-bot schema yet: {FIX} to create it"


def test_an_outdated_schema_names_both_revisions_and_the_fix(blank: str) -> None:
    upgrade(blank, "0001")
    result = run(blank, "workflow", "list", "acme")
    assert result.exit_code == 2
    assert one_line(result) == (
        f"error: the database schema is out of date (revision 0001; this trame-bot needs "
        f"{head_revision()}): {FIX}"
    )
    assert run(blank, "db", "upgrade").exit_code == 0
    assert run(blank, "workspace", "list").exit_code == 0


async def _set_revision(url: str, revision: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    await engine.dispose()


def test_a_revision_from_another_version_is_not_mistaken_for_an_old_one(blank: str) -> None:
    upgrade(blank)
    asyncio.run(_set_revision(blank, "9999"))
    listed = run(blank, "workspace", "list")
    assert listed.exit_code == 2
    assert "revision 9999, which this trame-bot does not know" in one_line(listed)
    upgraded = run(blank, "db", "upgrade")
    assert upgraded.exit_code == 2
    assert "cannot migrate the database" in one_line(upgraded)


def _process(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "LOG_LEVEL": "INFO",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "signing-secret",
    }
    return subprocess.run(
        [sys.executable, "-m", "trame_bot", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_scheduler_refuses_to_start_on_a_database_never_migrated(blank: str) -> None:
    done = _process(blank, "scheduler", "--sweep-every", "1s")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: the database has no trame-bot schema yet: {FIX} to create it"
    ]


def test_the_scheduler_refuses_to_start_on_an_outdated_schema(blank: str) -> None:
    upgrade(blank, "0001")
    done = _process(blank, "scheduler")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: the database schema is out of date (revision 0001; this trame-bot needs "
        f"{head_revision()}): {FIX}"
    ]


def test_serve_migrates_sqlite_and_refuses_an_unmigrated_postgresql(blank: str) -> None:
    """A SQLite file is migrated on start (a local install has no release step); PostgreSQL
    is migrated by the release step, so `serve` only checks it."""
    if blank.startswith("sqlite"):
        pytest.skip("serve migrates SQLite on start: the other tests start it that way")
    done = _process(blank, "serve", "--host", "127.0.0.1", "--port", "0")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: the database has no trame-bot schema yet: {FIX} to create it"
    ]

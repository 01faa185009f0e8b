"""`trame-bot audit verify --file`: an export checked offline, through the entry point, with no
database configured; each kind of tampering is named by its first bad line."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.cli import cli
from trame_bot.domain.actors import Actor
from trame_bot.domain.audit_chain import GENESIS_HASH, ChainLink, format_at, link_hash
from trame_bot.domain.audit_file import verify_lines
from trame_bot.domain.enums import Status
from trame_bot.services import workflow_status


def offline(*args: str) -> Result:
    """The CLI with no DATABASE_URL at all: `--file` must not need one."""
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": None, "LOG_LEVEL": "WARNING"})


@pytest.fixture
async def history(deps: Deps) -> None:
    await f.workspace(deps)
    await f.connector(deps, "acme", "crm")
    await f.connector(deps, "acme", "sheets", toolkit="google-sheets", scopes=["write"])
    await f.workflow(deps)
    for target in (Status.DRAFT, Status.PILOT, Status.PAUSED):
        await workflow_status.change_status(
            deps.ctx, "acme", "invoice-sync", target, Actor.slack(f.OWNER), reason="maintenance"
        )


@pytest.fixture
def export(history: None, database_url: str, tmp_path: Path) -> list[str]:
    """The JSONL export of a workspace with some history, from `audit export` (the real path)."""
    out = tmp_path / "all.jsonl"
    result = CliRunner().invoke(
        cli,
        ["audit", "export", "acme", "--format", "jsonl", "-o", str(out)],
        env={"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
    )
    assert result.exit_code == 0, result.stderr
    return out.read_text(encoding="utf-8").splitlines(keepends=True)


def write(tmp_path: Path, lines: list[str]) -> str:
    path = tmp_path / "checked.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return str(path)


def test_a_good_export_verifies_offline_with_its_span_and_hashes(
    export: list[str], tmp_path: Path
) -> None:
    first, last = json.loads(export[0]), json.loads(export[-1])
    assert first["workspace"] == "acme"
    assert first["prev_hash"] == GENESIS_HASH
    result = offline("audit", "verify", "--file", write(tmp_path, export))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"export verified: {len(export)} events of workspace acme, #1 (after {GENESIS_HASH}) "
        f"to #{last['seq']} (hash {last['hash']})\n"
    )
    # A window that starts mid-chain verifies too, its first prev_hash taken as given …
    middle = export[3:]
    assert offline("audit", "verify", "--file", write(tmp_path, middle)).exit_code == 0
    # … and pinned by the anchors a report prints.
    pinned = offline(
        "audit",
        "verify",
        "--file",
        write(tmp_path, middle),
        "--after",
        json.loads(export[3])["prev_hash"],
        "--last",
        last["hash"],
    )
    assert pinned.exit_code == 0, pinned.stderr


def edited(line: str, **changes: object) -> str:
    return json.dumps({**json.loads(line), **changes}, ensure_ascii=False) + "\n"


def forged(line: str, **changes: object) -> str:
    """An edit whose hash was recomputed, as a forger who knows the scheme would."""
    event = {**json.loads(line), **changes}
    link = ChainLink(
        **{k: event[k] for k in ChainLink.__dataclass_fields__ if k != "at"},
        at=datetime.fromisoformat(event["at"]),
    )
    assert format_at(link.at) == event["at"]
    return json.dumps({**event, "hash": link_hash(link)}, ensure_ascii=False) + "\n"


TAMPERINGS: dict[str, tuple[Callable[[list[str]], list[str]], list[str], str]] = {
    "edited": (
        lambda ls: [*ls[:4], edited(ls[4], summary="nothing happened"), *ls[5:]],
        [],
        "line 5: event #5 was edited after it was written",
    ),
    "removed in the middle": (
        lambda ls: [*ls[:4], *ls[5:]],
        [],
        "line 5: event #5 is missing or out of place (found #6): an event was removed",
    ),
    "reordered": (
        lambda ls: [*ls[:4], ls[5], ls[4], *ls[6:]],
        [],
        "line 5: event #5 is missing or out of place (found #6): an event was removed",
    ),
    "made-up hash": (
        lambda ls: [*ls[:4], forged(ls[4], reason="all fine"), *ls[5:]],
        [],
        "line 6: event #6 does not follow the event before it",
    ),
    "a previous hash that is not a hash": (
        lambda ls: [*ls[:4], forged(ls[4], prev_hash='"},{"'), *ls[5:]],
        [],
        "line 5 has a `prev_hash` that is not a SHA-256 hash (64 lowercase hex digits)",
    ),
    "truncated mid-line": (
        lambda ls: [*ls[:-1], ls[-1][:40]],
        [],
        "is cut short (no line end): the file was truncated",
    ),
    "truncated at a line end": (
        lambda ls: ls[:-2],
        ["--last"],
        "events were removed from its end",
    ),
    "cut at its start": (
        lambda ls: ls[2:],
        ["--after"],
        "line 1 (event #3) does not follow",
    ),
}


@pytest.mark.parametrize("kind", TAMPERINGS)
def test_a_tampered_export_names_its_first_bad_line(
    export: list[str], tmp_path: Path, kind: str
) -> None:
    change, anchors, expected = TAMPERINGS[kind]
    args = ["audit", "verify", "--file", write(tmp_path, change(export))]
    if "--last" in anchors:
        args += ["--last", json.loads(export[-1])["hash"]]
    if "--after" in anchors:
        args += ["--after", GENESIS_HASH]
    result = offline(*args)
    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "does NOT verify" in line
    assert expected in line, line


def test_what_is_not_an_export_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "old.jsonl").write_text('{"seq": 1, "hash": "x"}\n')
    empty = offline("audit", "verify", "--file", str(tmp_path / "empty.jsonl"))
    assert empty.exit_code == 1
    assert "the file holds no events" in empty.stderr
    old = offline("audit", "verify", "--file", str(tmp_path / "old.jsonl"))
    assert old.exit_code == 1
    assert "has no `workspace` field" in old.stderr
    missing = offline("audit", "verify", "--file", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 1
    assert (
        missing.stderr
        == f"error: cannot read {tmp_path / 'nope.jsonl'}: No such file or directory\n"
    )
    both = offline("audit", "verify", "acme", "--file", str(tmp_path / "old.jsonl"))
    assert both.exit_code == 1
    assert "not both" in both.stderr


def test_verify_lines_reports_the_span_of_a_good_window() -> None:
    assert verify_lines([]).problem == "the file holds no events"

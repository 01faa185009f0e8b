"""A million audit events export in constant memory, through the real CLI process."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.store.models import AuditEvent

EVENTS = 1_000_000
BATCH = 50_000
RSS_LIMIT_MB = 150  # the process itself is ~75 MB; a million events held in memory is > 1 GB

# Runs the CLI, then prints its peak RSS (VmHWM, kB). Not getrusage: a forked child inherits
# the parent's high-water mark until exec, which would measure the test, not the export.
PEAK_REPORTING_CLI = """
import sys
from trame_bot.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="trame-bot", standalone_mode=False)
finally:
    status = open("/proc/self/status").read()
    print(status.split("VmHWM:")[1].split()[0], file=sys.stderr)
"""


async def bulk_events(deps: Deps, workspace_id: int, count: int) -> None:
    """Rows written straight into the table: this measures export, not the hash chain."""
    start = deps.clock.now()
    for offset in range(0, count, BATCH):
        rows = [
            {
                "workspace_id": workspace_id,
                "seq": 1000 + i,
                "at": start + timedelta(seconds=i),
                "actor": "system",
                "action": "test.bulk",
                "entity_type": "run",
                "entity_id": f"run-{i % 5000}",
                "summary": f"bulk event {i}",
                "data": "{}",
                "reason": None,
                "prev_hash": "0" * 64,
                "hash": "1" * 64,
                "encoded": b"",
            }
            for i in range(offset, min(offset + BATCH, count))
        ]
        async with deps.db.transaction() as session:
            await session.execute(insert(AuditEvent), rows)


@pytest.mark.slow
async def test_exporting_a_million_events_streams_in_constant_memory(
    deps: Deps, database_url: str, tmp_path: Path
) -> None:
    ws = await f.workspace(deps, members=())
    await bulk_events(deps, ws.id, EVENTS)
    out = tmp_path / "audit.csv"
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PEAK_REPORTING_CLI,
        "audit",
        "export",
        "acme",
        "-o",
        str(out),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=600)
    assert process.returncode == 0, stderr.decode()
    peak_mb = int(stderr.decode().strip().splitlines()[-1]) / 1024
    assert peak_mb < RSS_LIMIT_MB, f"export peaked at {peak_mb:.0f} MB"
    with out.open() as handle:
        lines = sum(1 for _ in handle)
    assert lines == 1 + EVENTS + 1  # header, the bulk events, workspace.created

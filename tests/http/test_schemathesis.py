"""The API document is the API: Schemathesis, with every check it has, against the document the
real server serves, over a seeded workspace and a valid key.

Schemathesis runs as its CLI in a subprocess, as an engine team would run it, while the server
answers on this test's event loop. Its phases: the documented examples, coverage (each
constraint at its edges, undeclared methods, missing auth), fuzzing, and stateful sequences
along the links it infers. A schema-valid request must be accepted, a schema-invalid one
refused, every answer documented (status, headers, body), a 405 must say `Allow`.
Rules the schema cannot say are followed by the generator (schemathesis_hooks.py)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.http.conftest import Api

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("TRAME_SCHEMATHESIS_EXAMPLES", "15"))
"""Per operation and phase; raise it for a deeper search (generation is deterministic: the
same number gives the same requests)."""
LONGEST_ANSWER = 31.0
"""Seconds: the longest documented long-poll (`wait` ≤ 30) and a margin."""
RUN_WITHIN = 240.0


@pytest.mark.slow
async def test_schemathesis_finds_no_mismatch(api: Api, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.http.schemathesis_hooks",
        "NO_COLOR": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{api.base}/openapi.json",
        "--checks=all",
        f"--max-response-time={LONGEST_ANSWER}",
        f"--request-timeout={LONGEST_ANSWER + 4}",
        f"--header=Authorization: Bearer {api.token}",
        f"--max-examples={EXAMPLES}",
        "--generation-deterministic",  # the same requests every run: no seed, no database
        "--workers=1",
        "--continue-on-failure",
        "--no-color",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_WITHIN)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    report = output.decode("utf-8", errors="replace")
    print(report)  # shown with -s, or -rP
    assert process.returncode == 0, report
    assert " passed" in report, report
    assert "failed" not in report, report


async def test_a_405_says_which_methods_are_allowed(api: Api) -> None:
    reply = await api.call("TRACE", "/workflows")
    assert reply.status == 405
    assert set(reply.headers["Allow"].split(",")) == {"GET", "HEAD"}
    assert reply.json["error"] == "method_not_allowed"

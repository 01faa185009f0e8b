"""`python -m bench --quick` runs every benchmark row end to end and records each one.

A smoke test: it checks that the benchmarks run and report, never how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROWS = {
    "1a",
    "1b",
    "1c",
    "2a",
    "2b",
    "3a",
    "3b",
    "4",
    "5",
    "6",
    "6b",
    "7a",
    "7b",
    "7c",
    "8",
    "8b",
    "6–8",
}
ROWS |= {"9", "9s", "9b", "10a", "10b"}
ROWS |= {"1d", "1e", "1f", "2c", "3c", "4c"}
ROWS |= {
    f"{row}-d" for row in ("1a", "1b", "1c", "1d", "1e", "1f", "2a", "2b", "2c", "3a", "3b", "3c")
}
ROWS |= {f"S{n}{size}" for n in range(1, 10) for size in "abc"}


@pytest.mark.slow
def test_quick_benchmark_reports_every_row(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(output.read_text())
    results = {r["row"]: r for r in document["results"]}
    assert set(results) == ROWS
    for row in results.values():
        assert isinstance(row["value"], int | float), row
        assert isinstance(row["met"], bool), row
        assert row["target"], row
        assert set(row) >= {"what", "unit", "baseline", "ratio", "details"}, row
    assert document["meta"]["database"] == "sqlite"
    assert document["meta"]["quick"] is True
    assert "trame-bot benchmarks on sqlite" in done.stdout
    assert (tmp_path / "results.png").read_bytes()[:4] == b"\x89PNG"

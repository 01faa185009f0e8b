"""What the jobs say: a database that is down or was never migrated is one line per job and
turn, naming the job and what to do, never a traceback; jobs carry their own names; and a
real scheduler's log has our outcome lines, not APScheduler's per-run chatter."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.blank_database import blank_database
from tests.reliability.processes import trame_bot
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.jobs import Jobs, Schedule, build_scheduler
from trame_bot.probes import HttpProbe
from trame_bot.store.database import Database

JOBS = ("health_sweep", "daily_digests", "approvals")
DOWN = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"


@pytest.fixture
def blank(tmp_path: Path) -> Iterator[str]:
    with blank_database(tmp_path) as url:
        yield url


async def one_turn(
    deps: Deps, probe: HttpProbe, caplog: pytest.LogCaptureFixture
) -> list[logging.LogRecord]:
    """Every job once, as the scheduler calls it; what trame-bot logged meanwhile."""
    scheduler = build_scheduler(Jobs(deps.ctx, probe, Schedule()), deps.metrics)
    caplog.clear()
    for job in scheduler.get_jobs():
        await job.func()
    return [r for r in caplog.records if r.name.startswith("trame_bot")]


def job_lines(records: list[logging.LogRecord]) -> dict[str, str]:
    lines = [r.getMessage() for r in records if r.name == "trame_bot.jobs"]
    by_job = {name: [line for line in lines if f"job {name} " in line] for name in JOBS}
    assert all(len(found) == 1 for found in by_job.values()), lines
    return {name: found[0] for name, found in by_job.items()}


@pytest.mark.parametrize("trouble", ["schema missing", "database down"])
async def test_an_expected_failure_is_one_line_per_job_and_turn(
    trouble: str,
    blank: str,
    deps: Deps,
    clock: FakeClock,
    probe: HttpProbe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    url = blank if trouble == "schema missing" else DOWN
    troubled = Deps(deps.settings, Database(url), clock)
    try:
        first = await one_turn(troubled, probe, caplog)
        second = await one_turn(troubled, probe, caplog)
    finally:
        await troubled.close()
    advice = "trame-bot db upgrade" if trouble == "schema missing" else "unavailable"
    for turn in (first, second):
        assert not [r for r in turn if r.exc_info], "no traceback for an expected condition"
        for name, line in job_lines(turn).items():
            assert line.startswith(f"job {name} did not run this turn: "), line
            assert advice in line
    # The database says once that its trouble began; after that, one line per job and turn.
    assert len(first) == len(JOBS) + 1
    assert len(second) == len(JOBS)
    for name in JOBS:
        failed = {"job": name, "outcome": "failed"}
        assert troubled.metrics.registry.get_sample_value("trame_job_runs_total", failed) == 2


async def test_a_bug_in_a_job_is_a_traceback_with_a_reference(
    deps: Deps, probe: HttpProbe, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Jobs):
        async def approvals(self) -> None:
            raise RuntimeError("a bug")

    scheduler = build_scheduler(Broken(deps.ctx, probe, Schedule()), deps.metrics)
    job = scheduler.get_job("approvals")
    await job.func()
    (record,) = [r for r in caplog.records if r.name == "trame_bot.jobs"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert "job approvals failed (ref " in record.getMessage()


async def test_jobs_carry_their_own_names(deps: Deps, probe: HttpProbe) -> None:
    scheduler = build_scheduler(Jobs(deps.ctx, probe, Schedule()), deps.metrics)
    jobs = scheduler.get_jobs()
    assert [job.id for job in jobs] == list(JOBS)
    assert [job.name for job in jobs] == list(JOBS)
    assert [job.func.__qualname__ for job in jobs] == list(JOBS)
    for job in jobs:
        await job.func()
        ok = {"job": job.id, "outcome": "ok"}
        assert deps.metrics.registry.get_sample_value("trame_job_runs_total", ok) == 1


async def test_a_running_scheduler_logs_outcomes_not_apscheduler_chatter(
    database_url: str,
) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "INFO"}
    process = await trame_bot(
        "scheduler", "--sweep-every", "1s", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    assert process.stderr is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(30):
            while sum("health sweep:" in line for line in seen) < 2:  # two turns at least
                line = (await process.stderr.readline()).decode()
                assert line, "the scheduler stopped: " + "".join(seen)
                seen.append(line)
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), timeout=20)
    log = "".join(seen) + rest.decode()
    assert "scheduler running" in log
    assert "Running job" not in log
    assert "executed successfully" not in log
    assert "_guarded" not in log
    assert process.returncode == 0

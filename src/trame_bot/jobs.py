"""Scheduled jobs (APScheduler 3.x): the health sweep, daily digests, reminders and expiry.

Every job is safe with several schedulers on one database: transitions, reminders and expiry
are conditional updates, digests are keyed by workspace and local date, probes hold a lease.
A failing job logs and waits for its next turn; it never stops the scheduler. An expected
failure (the database down, its schema missing) is one line per turn; a bug is a traceback
with a reference id.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from trame_bot.domain.values import counted
from trame_bot.errors import TrameError
from trame_bot.metrics import Metrics
from trame_bot.probes import HttpProbe, Probe, probe_session
from trame_bot.services import digests, reminders, runs, sweep
from trame_bot.services.context import Context

log = logging.getLogger("trame_bot.jobs")


@dataclass(frozen=True)
class Schedule:
    sweep_every: timedelta = timedelta(minutes=5)
    digests_every: timedelta = timedelta(minutes=1)
    approvals_every: timedelta = timedelta(seconds=30)
    probe_timeout: float = 10.0
    sweep: sweep.SweepSettings = field(default_factory=sweep.SweepSettings)


class Jobs:
    def __init__(self, ctx: Context, probe: Probe, schedule: Schedule) -> None:
        self.ctx = ctx
        self.probe = probe
        self.schedule = schedule

    async def health_sweep(self) -> None:
        result = await sweep.sweep(self.ctx, self.probe, self.schedule.sweep)
        transitions = counted(result.transitions, "transition")
        log.info(
            "health sweep: %s probed, %s, %s skipped", result.probed, transitions, result.skipped
        )

    async def daily_digests(self) -> None:
        sent = await digests.send_due_digests(self.ctx)
        if sent:
            log.info("sent %s", counted(sent, "daily digest"))

    async def approvals(self) -> None:
        expired = await runs.expire_due_runs(self.ctx)  # first: an expired run needs no reminder
        reminded = await reminders.remind_due(self.ctx)
        if reminded or expired:
            log.info("approvals: %s reminded, %s expired", reminded, expired)


def _guarded(
    name: str, job: Callable[[], Awaitable[None]], metrics: Metrics
) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await job()
        except TrameError as exc:
            # Expected (the database down, its schema missing): what and what to do, no trace.
            metrics.job_runs.labels(job=name, outcome="failed").inc()
            log.warning("job %s did not run this turn: %s", name, exc.message)
        except Exception:
            metrics.job_runs.labels(job=name, outcome="failed").inc()
            ref = secrets.token_hex(4)
            log.exception("job %s failed (ref %s); it runs again at its next turn", name, ref)
        else:
            metrics.job_runs.labels(job=name, outcome="ok").inc()

    # The job's own name wherever the function's is shown, instead of `_guarded.<locals>.run`.
    run.__name__ = run.__qualname__ = name
    return run


def build_scheduler(jobs: Jobs, metrics: Metrics) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        # One run of a job at a time; a late run is merged into one rather than repeated.
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
    now = datetime.now(UTC)
    for name, job, every in (
        ("health_sweep", jobs.health_sweep, jobs.schedule.sweep_every),
        ("daily_digests", jobs.daily_digests, jobs.schedule.digests_every),
        ("approvals", jobs.approvals, jobs.schedule.approvals_every),
    ):
        scheduler.add_job(
            _guarded(name, job, metrics),
            IntervalTrigger(seconds=every.total_seconds()),
            id=name,
            name=name,
            next_run_time=now,
        )
    return scheduler


@asynccontextmanager
async def running(
    ctx: Context, schedule: Schedule, metrics: Metrics
) -> AsyncIterator[AsyncIOScheduler]:
    """The scheduler with its HTTP probe, started in the running event loop, stopped after."""
    async with probe_session(schedule.sweep.max_open_probes) as http:
        scheduler = build_scheduler(
            Jobs(ctx, HttpProbe(http, schedule.probe_timeout), schedule), metrics
        )
        scheduler.start()
        try:
            yield scheduler
        finally:
            scheduler.shutdown(wait=False)

"""Row 10: the server's memory. Its RSS (/proc/<pid>/status) when idle, after start-up and a
first round of requests, then its growth while it decides many runs through Approve clicks, each
with its card update and thread reply delivered to the fake Slack. The runs are the engine's
(requested by a trigger, not a person), so no DM goes out: that halves the outbox work of a
100,000-run round, which the outbox worker delivers one message at a time.

The runs are written straight into the table in rounds, with their cards already in the fake
Slack (as if posted), so that the server's work is the decision and its deliveries. Rounds
overlap: the next round's clicks start once no more than a round's messages wait in the outbox,
so the server is never idle between clicking and delivering (it is one process, and its own CPU
per run sets the pace). Growth is measured between two moments when everything is delivered:
the end of a warm-up round (caches, pools and Bolt filled once) and the end.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

from bench import loadgen
from bench.cpu import cpu_seconds
from bench.harness import (
    REVIEWERS,
    SIGNING_SECRET,
    Child,
    Target,
    child_env,
    scalar,
    seeded_cards,
    started,
    wait_for,
    workflow,
    workspace,
)
from bench.report import Result, at_most
from trame_bot.bootstrap import Deps
from trame_bot.store.models import Run, Workflow

CHANNEL = "C0MEMORY"
ENGINE = "api:engine"
CONCURRENCY = 20
ROUND = 5_000
BACKLOG = 2 * ROUND
"""Undelivered messages (two a run) left when the next round's clicks start: about a round's
worth, so deliveries never run dry and the outbox table's pending rows stay bounded."""
DECIDED_WITHIN = 10.0
"""Seconds the last clicks' decisions get to commit before a run still pending is clicked
again (a click is acknowledged first, decided after)."""
SETTLE_WITHIN = 3600.0
"""Seconds a round's deliveries may take to come down to the backlog before the run fails."""


async def run(target: Target) -> list[Result]:
    database = await target.fresh_database("memory")
    deps = target.deps(database)
    total = target.sizes.memory_runs
    try:
        ws = await workspace(deps, "acme", CHANNEL)
        await workflow(deps, "acme", "approvals")
        async with deps.db.reading() as session:
            wf = (
                await session.execute(select(Workflow).where(Workflow.key == "approvals"))
            ).scalar_one()
        async with started("fake", target.workdir, child_env()) as fake:
            env = child_env(database, fake.url + "api/")
            async with started(
                "trame", target.workdir, env, profile_dir=target.profile_dir
            ) as trame:
                driver = _Driver(deps, trame, fake, ws.id, wf)
                at_start = trame.rss_mb()
                await driver.round(20, backlog=0)
                await asyncio.sleep(1.0)
                idle = trame.rss_mb()
                await driver.round(max(min(total // 10, ROUND), 20), backlog=0)
                before = trame.rss_mb()
                samples = [round(before, 1)]
                cpu_before = cpu_seconds(trame.process.pid)
                driver.clicking = driver.waiting = 0.0
                decided, started_at = 0, time.perf_counter()
                while decided < total:
                    size = min(ROUND, total - decided)
                    decided += size
                    await driver.round(size, backlog=BACKLOG if decided < total else 0)
                    samples.append(round(trame.rss_mb(), 1))
                    elapsed = time.perf_counter() - started_at
                    print(
                        f"   memory: {decided:,} runs decided in {elapsed:.0f} s, "
                        f"server RSS {samples[-1]} MB (after warm-up {samples[0]} MB)",
                        file=sys.stderr,
                        flush=True,
                    )
                seconds = time.perf_counter() - started_at
                server_cpu = cpu_seconds(trame.process.pid) - cpu_before
                after = trame.rss_mb()
                peak = trame.status_kb("VmHWM") / 1024
                errors = trame.logged_errors()
        approved = await scalar(deps, "SELECT count(*) FROM runs WHERE state = 'approved'")
    finally:
        await deps.close()
    details: dict[str, Any] = {"rss_at_start_mb": round(at_start, 1)}
    return [
        at_most("10a", "server RSS, idle", idle, "MB", 120, **details),
        at_most(
            "10b",
            f"server RSS growth over {total:,} runs decided",
            after - before,
            "MB",
            20,
            runs=total,
            rss_before_mb=round(before, 1),
            rss_after_mb=round(after, 1),
            rss_peak_mb=round(peak, 1),
            rss_samples_mb=samples,
            sample_every_runs=ROUND,
            growth_per_10k_runs_mb=round((after - before) * 10_000 / total, 2),
            seconds=round(seconds, 1),
            runs_decided_per_s=round(total / seconds, 1),
            server_cpu_ms_per_run=round(1000 * server_cpu / total, 2),
            server_cpu_share=round(server_cpu / seconds, 2),
            seconds_clicking=round(driver.clicking, 1),
            seconds_waiting_for_deliveries=round(driver.waiting, 1),
            approved=approved,
            clicks_retried_after_an_error=driver.retried,
            server_errors_logged=errors,
        ),
    ]


@dataclass
class _Driver:
    """Rounds of pending runs, each clicked once; a click refused for a busy database is
    clicked again, as the reviewer told to try again would (`retried` counts them)."""

    deps: Deps
    trame: Child
    fake: Child
    workspace_id: int
    wf: Workflow
    retried: int = 0
    clicking: float = 0.0
    waiting: float = 0.0

    async def round(self, count: int, *, backlog: int) -> None:
        """`count` pending runs with posted cards, one Approve click each; returns once every
        one is decided and at most `backlog` messages wait in the outbox (0: all delivered)."""
        ids = dict(await _pending_runs(self.deps, self.fake, self.workspace_id, self.wf, count))
        for _ in range(5):
            await self._click(ids)
            # A click is acknowledged before its decision commits: give those a moment.
            await wait_for(self._all_decided, within=DECIDED_WITHIN, every=0.1)
            await self._settle(backlog)
            async with self.deps.db.reading() as session:
                still = set(
                    (
                        await session.execute(
                            select(Run.id).where(Run.state == "pending", Run.id.in_(list(ids)))
                        )
                    ).scalars()
                )
            if not still:
                return
            self.retried += len(still)
            ids = {run_id: ts for run_id, ts in ids.items() if run_id in still}
        raise RuntimeError(f"{len(ids)} runs stayed pending after 5 rounds of clicks")

    async def _all_decided(self) -> bool:
        return await scalar(self.deps, "SELECT count(*) FROM runs WHERE state = 'pending'") == 0

    async def _click(self, ids: dict[str, str]) -> None:
        started_at = time.perf_counter()
        await loadgen.run(
            {
                "url": self.trame.url + "slack/events",
                "signing_secret": SIGNING_SECRET,
                "fake_url": self.fake.url,
                "concurrency": CONCURRENCY,
                "requests": [
                    {
                        "click": run_id,
                        "user": REVIEWERS[n % len(REVIEWERS)],
                        "channel": CHANNEL,
                        "ts": ts,
                    }
                    for n, (run_id, ts) in enumerate(ids.items())
                ],
            }
        )
        self.clicking += time.perf_counter() - started_at

    async def _settle(self, backlog: int) -> None:
        started_at = time.perf_counter()

        async def delivered() -> bool:
            pending = "SELECT count(*) FROM outbox WHERE state = 'pending'"
            return await scalar(self.deps, pending) <= backlog

        if not await wait_for(delivered, within=SETTLE_WITHIN, every=0.2):
            raise RuntimeError("the server did not deliver a round of decisions in time")
        self.waiting += time.perf_counter() - started_at


async def _pending_runs(
    deps: Deps, fake: Child, workspace_id: int, wf: Workflow, count: int
) -> list[tuple[str, str]]:
    cards = await seeded_cards(fake, CHANNEL, count)
    now = deps.clock.now()
    rows = [
        {
            "id": uuid.uuid4().hex,
            "workspace_id": workspace_id,
            "workflow_id": wf.id,
            "workflow_version": wf.version,
            "workflow_status": wf.status,
            "source": "manual",
            "requested_by": ENGINE,
            "plan": list(wf.steps),
            "fingerprint": wf.fingerprint,
            "details": {},
            "state": "pending",
            "required_approvals": 1,
            "approvals": 0,
            "reviewers": [],
            "requested_at": now,
            "expires_at": now + timedelta(days=1),
            "slack_channel": CHANNEL,
            "slack_ts": ts,
        }
        for ts in cards
    ]
    async with deps.db.transaction() as session:
        await session.execute(insert(Run), rows)
    return [(str(row["id"]), str(row["slack_ts"])) for row in rows]

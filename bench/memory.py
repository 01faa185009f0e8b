"""Row 10: the server's memory. Its RSS (/proc/<pid>/status) when idle, after start-up and a
first round of requests, then its growth while it decides many runs through Approve clicks, each
with its card update and thread reply delivered to the fake Slack. The runs are the engine's
(requested by a trigger, not a person), so no DM goes out: that halves the outbox work of a
100,000-run round, which the outbox worker delivers one message at a time.

The runs are written straight into the table in rounds, with their cards already in the fake
Slack (as if posted), so that the server's work is the decision and its deliveries. Growth is
measured from the end of a first warm-up round (caches, pools and Bolt filled once) to the end.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

from bench import loadgen
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
from trame_bot.domain.plan import fingerprint, steps_from_dicts
from trame_bot.store.models import Run, Workflow

CHANNEL = "C0MEMORY"
ENGINE = "api:engine"
CONCURRENCY = 20
ROUND = 5_000


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
                at_start = trame.rss_mb()
                retried = await _round(deps, trame, fake, ws.id, wf, 20)
                await asyncio.sleep(1.0)
                idle = trame.rss_mb()
                warm = max(min(total // 10, ROUND), 20)
                retried += await _round(deps, trame, fake, ws.id, wf, warm)
                before = trame.rss_mb()
                samples = [round(before, 1)]
                decided, started_at = 0, time.perf_counter()
                while decided < total:
                    size = min(ROUND, total - decided)
                    retried += await _round(deps, trame, fake, ws.id, wf, size)
                    decided += size
                    samples.append(round(trame.rss_mb(), 1))
                seconds = time.perf_counter() - started_at
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
            runs_decided_per_s=round(total / seconds, 1),
            approved=approved,
            clicks_retried_after_an_error=retried,
            server_errors_logged=errors,
        ),
    ]


async def _round(
    deps: Deps, trame: Child, fake: Child, workspace_id: int, wf: Workflow, count: int
) -> int:
    """`count` pending runs with posted cards, one Approve click each, until every run is
    decided and every message delivered. A click refused for a busy database is clicked again,
    as the reviewer told to try again would; returns how many were."""
    ids = dict(await _pending_runs(deps, fake, workspace_id, wf, count))
    retried = 0
    for _ in range(5):
        requests = [
            {"click": run_id, "user": REVIEWERS[n % len(REVIEWERS)], "channel": CHANNEL, "ts": ts}
            for n, (run_id, ts) in enumerate(ids.items())
        ]
        await loadgen.run(
            {
                "url": trame.url + "slack/events",
                "signing_secret": SIGNING_SECRET,
                "fake_url": fake.url,
                "concurrency": CONCURRENCY,
                "requests": requests,
            }
        )

        async def delivered() -> bool:
            return await scalar(deps, "SELECT count(*) FROM outbox WHERE state = 'pending'") == 0

        if not await wait_for(delivered, within=300 + count / 5, every=0.2):
            raise RuntimeError("the server did not deliver a round of decisions in time")
        async with deps.db.reading() as session:
            still = set(
                (
                    await session.execute(
                        select(Run.id).where(Run.state == "pending", Run.id.in_(list(ids)))
                    )
                ).scalars()
            )
        if not still:
            return retried
        retried += len(still)
        ids = {run_id: ts for run_id, ts in ids.items() if run_id in still}
    raise RuntimeError(f"{len(ids)} runs stayed pending after 5 rounds of clicks")


async def _pending_runs(
    deps: Deps, fake: Child, workspace_id: int, wf: Workflow, count: int
) -> list[tuple[str, str]]:
    cards = await seeded_cards(fake, CHANNEL, count)
    now = deps.clock.now()
    steps = steps_from_dicts(wf.steps)
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
            "fingerprint": fingerprint(steps, wf.version),
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

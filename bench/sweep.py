"""Row 9: the connector health sweep (`services.sweep.sweep`, as the scheduler runs it, with the
same `HttpProbe` and settings) over many connectors whose health URLs answer in 50 ms from a
probe server in its own process: 5% answer 500, 1% never answer.

The baseline is the ideal: every connector probed back to back at the sweep's concurrency,
connectors × 50 ms ÷ concurrency. A probe that hangs holds its slot for the probe timeout, so
the best any sweep of this shape can do is also reported (`lower_bound_s`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import aiohttp
from sqlalchemy import insert

from bench.harness import Target, child_env, scalar, started, workspace
from bench.report import Result, at_most_times
from bench.servers import PROBE_DELAY
from trame_bot.jobs import Schedule
from trame_bot.probes import HttpProbe
from trame_bot.services import sweep
from trame_bot.store.models import Connector

FAILING, HANGING = 0.05, 0.01


async def run(target: Target) -> list[Result]:
    """Row 9 with the product's probe timeout, and 9b with a short one: a probe that never
    answers holds its slot for the whole timeout, which bounds what any sweep can reach."""
    sizes = target.sizes
    return [
        await _sweep(target, "9", sizes.probe_timeout),
        await _sweep(target, "9b", sizes.short_probe_timeout),
    ]


async def _sweep(target: Target, row: str, probe_timeout: float) -> Result:
    database = await target.fresh_database(f"sweep-{row}")
    deps = target.deps(database)
    count = target.sizes.connectors
    settings = Schedule().sweep
    try:
        ws = await workspace(deps, "acme", "C0ACME", reviewers=(), connector_keys=())
        async with started("probe", target.workdir, child_env()) as probe:
            await _connectors(deps, ws.id, count, probe.url)
            async with aiohttp.ClientSession() as http:  # as `jobs.running` opens it
                started_at = time.perf_counter()
                result = await sweep.sweep(deps.ctx, HttpProbe(http, probe_timeout), settings)
                seconds = time.perf_counter() - started_at
        unhealthy = await scalar(deps, "SELECT count(*) FROM connectors WHERE health <> 'ok'")
    finally:
        await deps.close()
    hanging = _hanging(count)
    ideal = count * PROBE_DELAY / settings.concurrency
    lower_bound = ((count - hanging) * PROBE_DELAY + hanging * probe_timeout) / settings.concurrency
    details: dict[str, Any] = {
        "connectors": count,
        "concurrency": settings.concurrency,
        "probe_timeout_s": probe_timeout,
        "probed": result.probed,
        "transitions": result.transitions,
        "findings": result.findings,
        "unhealthy_after": unhealthy,
        "expected_unhealthy": _failing(count) + hanging,
        "lower_bound_s": round(lower_bound, 2),
        "lower_bound_ratio": round(lower_bound / ideal, 2),
    }
    figure = at_most_times(
        row,
        f"health sweep of {count:,} connectors, probe timeout {probe_timeout:g} s",
        seconds,
        "s",
        ideal,
        "ideal s (n × 50 ms ÷ concurrency)",
        1.5,
        **details,
    )
    every_one = result.probed == count and unhealthy == details["expected_unhealthy"]
    return replace(figure, met=figure.met and every_one)


def _failing(count: int) -> int:
    return round(count * FAILING)


def _hanging(count: int) -> int:
    return round(count * HANGING)


async def _connectors(deps: Any, workspace_id: int, count: int, probe_url: str) -> None:
    """Healthy connectors, reported on recently (not stale), written straight into the table:
    the sweep is measured, not 20,000 `connector apply` transactions. Failing and hanging ones
    are spread evenly, as they would be."""
    now = deps.clock.now()
    failing_every = count // max(_failing(count), 1)
    hanging_every = count // max(_hanging(count), 1)
    rows = []
    for n in range(count):
        if n % hanging_every == hanging_every // 2:
            path = "hang"
        elif n % failing_every == 0:
            path = "fail"
        else:
            path = "ok"
        rows.append(
            {
                "workspace_id": workspace_id,
                "key": f"conn-{n:05d}",
                "toolkit": "http",
                "account": f"acme/conn-{n:05d}",
                "scopes": ["read"],
                "health": "ok",
                "health_since": now - timedelta(days=1),
                "last_reported_at": now - timedelta(minutes=5),
                "health_url": f"{probe_url}{path}/{n}",
                "created_at": now,
                "updated_at": now,
            }
        )
    async with deps.db.transaction() as session:
        await session.execute(insert(Connector), rows)

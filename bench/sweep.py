"""Rows 9, 9s and 9b: the connector health sweep (`services.sweep.sweep`, as the scheduler runs
it, with the same `HttpProbe`, probe session and settings) over many connectors whose health
URLs answer in 50 ms from a probe server in its own process: 5% answer 500, 1% never answer.

- 9, the first ("cold") sweep: no connector has a history, so they are probed by id and the
  hung URLs are spread over the whole sweep;
- 9s, the steady state: the next sweep over the same connectors, as the scheduler runs one
  every interval; those found failing or hung are probed first;
- 9b, the cold sweep again with a short probe timeout (2 s): how much of row 9 is the timeout.

The baseline is the ideal: every connector probed back to back at the sweep's concurrency,
connectors × 50 ms ÷ concurrency. No sweep of this design can beat `lower_bound_s`
(`_lower_bound`): every probe holds a slot until it answers or its soft deadline passes, and a
hung probe ends a full probe timeout after it started, which is no sooner than the slots taken
by the probes ahead of it allow.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import insert

from bench.harness import Target, child_env, scalar, started, workspace
from bench.report import Result, at_most_times
from bench.servers import PROBE_DELAY
from trame_bot.jobs import Schedule
from trame_bot.probes import HttpProbe, probe_session
from trame_bot.services import sweep
from trame_bot.store.models import Connector

FAILING, HANGING = 0.05, 0.01


async def run(target: Target) -> list[Result]:
    sizes = target.sizes
    return [
        *await _sweeps(target, ("9", "9s"), sizes.probe_timeout),
        *await _sweeps(target, ("9b",), sizes.short_probe_timeout),
    ]


async def _sweeps(target: Target, rows: tuple[str, ...], probe_timeout: float) -> list[Result]:
    """One sweep per row over the same connectors, one after the other (the first is cold)."""
    database = await target.fresh_database(f"sweep-{rows[0]}")
    deps = target.deps(database)
    count = target.sizes.connectors
    settings = Schedule().sweep
    paths = _paths(count)
    found = []
    try:
        ws = await workspace(deps, "acme", "C0ACME", reviewers=(), connector_keys=())
        async with started("probe", target.workdir, child_env()) as probe:
            await _connectors(deps, ws.id, paths, probe.url)
            async with probe_session(settings.max_open_probes) as http:  # as `jobs.running`
                for turn in range(len(rows)):
                    started_at, cpu_at = time.perf_counter(), time.process_time()
                    result = await sweep.sweep(deps.ctx, HttpProbe(http, probe_timeout), settings)
                    seconds = time.perf_counter() - started_at
                    cpu = time.process_time() - cpu_at
                    unhealthy = await scalar(
                        deps, "SELECT count(*) FROM connectors WHERE health <> 'ok'"
                    )
                    found.append((seconds, cpu, result, unhealthy, turn > 0))
    finally:
        await deps.close()
    return [
        _figure(row, paths, settings, probe_timeout, *measured)
        for row, measured in zip(rows, found, strict=True)
    ]


def _figure(
    row: str,
    paths: list[str],
    settings: sweep.SweepSettings,
    probe_timeout: float,
    seconds: float,
    cpu: float,
    result: sweep.SweepResult,
    unhealthy: int,
    history: bool,
) -> Result:
    count = len(paths)
    ideal = count * PROBE_DELAY / settings.concurrency
    order = _order(paths, history)
    answers = [probe_timeout if path == "hang" else PROBE_DELAY for path in order]
    soft_deadline = settings.soft_deadline.total_seconds()
    lower_bound = _lower_bound(answers, settings.concurrency, soft_deadline)
    details: dict[str, Any] = {
        "connectors": count,
        "sweep": "steady (the next turn: not healthy first)" if history else "cold (by id)",
        "concurrency": settings.concurrency,
        "soft_deadline_s": soft_deadline,
        "max_open_probes": settings.max_open_probes,
        "probe_timeout_s": probe_timeout,
        "probed": result.probed,
        "transitions": result.transitions,
        "findings": result.findings,
        "slow": result.slow,
        "most_open": result.most_open,
        "cpu_s": round(cpu, 2),
        "unhealthy_after": unhealthy,
        "expected_unhealthy": paths.count("fail") + paths.count("hang"),
        "lower_bound_s": round(lower_bound, 2),
        "lower_bound_ratio": round(lower_bound / ideal, 2),
    }
    sweep_kind = "next sweep" if history else "first sweep"
    figure = at_most_times(
        row,
        f"health {sweep_kind} of {count:,} connectors, probe timeout {probe_timeout:g} s",
        seconds,
        "s",
        ideal,
        "ideal s (n × 50 ms ÷ concurrency)",
        1.5,
        **details,
    )
    every_one = result.probed == count and unhealthy == details["expected_unhealthy"]
    return replace(figure, met=figure.met and every_one)


def _order(paths: list[str], history: bool) -> list[str]:
    """The order the sweep probes them in (`store.sweep_targets`): by id, the connectors not
    healthy first once a sweep has found them (every failing and hung one, here)."""
    if not history:
        return paths
    return sorted(paths, key=lambda path: path == "ok")  # stable: by id within each


def _lower_bound(answers: list[float], concurrency: int, soft_deadline: float) -> float:
    """The shortest sweep of probes answering after `answers` seconds each, in this order.

    Each probe holds a slot for min(answer, soft deadline), so the sweep takes at least the sum
    of those ÷ concurrency. Probes start in order: when one starts, every probe ahead of it has
    started, and all but the concurrency − 1 still holding a slot have used their whole hold;
    so it starts no sooner than (holds ahead − (concurrency − 1) × longest hold) ÷ concurrency,
    and ends its whole answer time after that: a hung URL, the probe timeout, whether or not it
    gave its slot back. The cap on open probes can only make it slower.
    """
    holds = [min(answer, soft_deadline) for answer in answers]
    longest = max(holds, default=0.0)
    bound = sum(holds) / concurrency
    ahead = 0.0
    for answer, hold in zip(answers, holds, strict=True):
        start = max(0.0, (ahead - (concurrency - 1) * longest) / concurrency)
        bound = max(bound, start + answer)
        ahead += hold
    return bound


def _failing(count: int) -> int:
    return round(count * FAILING)


def _hanging(count: int) -> int:
    return round(count * HANGING)


def _paths(count: int) -> list[str]:
    """What each connector's health URL does, by id: failing and hung ones spread evenly, as
    they would be."""
    failing_every = count // max(_failing(count), 1)
    hanging_every = count // max(_hanging(count), 1)
    paths = []
    for n in range(count):
        if n % hanging_every == hanging_every // 2:
            paths.append("hang")
        elif n % failing_every == 0:
            paths.append("fail")
        else:
            paths.append("ok")
    return paths


async def _connectors(deps: Any, workspace_id: int, paths: list[str], probe_url: str) -> None:
    """Healthy connectors, reported on recently (not stale), written straight into the table
    in id order: the sweep is measured, not 20,000 `connector apply` transactions."""
    now = deps.clock.now()
    rows = [
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
        for n, path in enumerate(paths)
    ]
    async with deps.db.transaction() as session:
        await session.execute(insert(Connector), rows)

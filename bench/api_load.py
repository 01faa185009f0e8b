"""Row 4: `POST /api/v1/workflows/{key}/runs` on a live workflow (key check, gate, run, audit
event) through the real server, against a minimal aiohttp handler doing one INSERT per request
on the same database; row 4c, no target: the nearest design (`bench.servers`, `api-reference`)
against the same baseline. Each runs in its own process, the load generator in another."""

from __future__ import annotations

from bench.cpu import database_name
from bench.harness import (
    MEMBER,
    Child,
    Load,
    Target,
    all_ok,
    alternate,
    child_env,
    load_details,
    scalar,
    started,
    workflow,
    workspace,
)
from bench.report import Result, at_least, measured
from bench.servers import INSERT_TABLE, NEAREST_DESIGN
from trame_bot.domain.actors import Actor
from trame_bot.services import workspaces

CONCURRENCY = 10
BODY = {"source": "manual", "requested_by": MEMBER, "details": {"batch": "nightly"}}
RUNS = "api/v1/workflows/sync/runs"
NO_SLACK = "http://127.0.0.1:9/api/"
"""The API never calls Slack for a live run; nothing listens there."""


async def run(target: Target) -> list[Result]:
    database = await target.fresh_database("api")
    deps = target.deps(database)
    try:
        await workspace(deps, "acme", "C0ACME")
        await workflow(deps, "acme", "sync", live=True)
        _, token = await workspaces.create_api_key(deps.ctx, "acme", "engine", Actor.cli())
        env = child_env(database, NO_SLACK)
        async with (
            started("insert", target.workdir, env) as insert,
            started("trame", target.workdir, env, profile_dir=target.profile_dir) as trame,
            started("api-reference", target.workdir, env) as nearest_server,
        ):
            count = target.sizes.api_requests
            postgres = database_name(target.postgres_url)
            baseline_spec = _spec(insert, "runs", token, count, postgres=postgres)
            subject, baseline = await alternate(
                target.sizes.repeats,
                subject=_spec(trame, RUNS, token, count, postgres=postgres),
                baseline=baseline_spec,
            )
            errors = trame.logged_errors()
            nearest, nearest_baseline = await alternate(
                target.sizes.repeats,
                subject=_spec(nearest_server, RUNS, token, count, postgres=postgres),
                baseline=baseline_spec,
            )
        approved = "SELECT count(*) FROM runs WHERE state = 'approved' AND decided_by = :by"
        runs = await scalar(deps, approved, by="gate")
        nearest_runs = await scalar(deps, approved, by=NEAREST_DESIGN)
        audited = await scalar(
            deps, "SELECT count(*) FROM audit_events WHERE action = 'run.requested'"
        )
        inserted = await scalar(deps, f"SELECT count(*) FROM {INSERT_TABLE}")
    finally:
        await deps.close()
    expected = (count + CONCURRENCY) * target.sizes.repeats  # with the warm-up requests
    result = at_least(
        "4",
        f"POST /api/v1/…/runs on a live workflow, {CONCURRENCY} concurrent",
        subject["rps"],
        "req/s",
        baseline["rps"],
        "aiohttp + one INSERT req/s",
        0.5,
        **load_details(subject, baseline),
        runs_approved=runs,
        audit_events=audited,
        baseline_rows=inserted,
        expected=expected,
        server_errors_logged=errors,
    )
    ok = all_ok(subject, "201") and all_ok(baseline, "201") and runs == audited == expected
    reference = measured(
        "4c",
        f"POST /api/v1/…/runs, {CONCURRENCY} concurrent: the nearest design (aiohttp + the"
        " request's SQLAlchemy Core work)",
        nearest["rps"],
        "req/s",
        nearest_baseline["rps"],
        "aiohttp + one INSERT req/s",
        all_ok=all_ok(nearest, "201") and nearest_runs == expected,
        runs_approved=nearest_runs,
        **load_details(nearest, nearest_baseline),
    )
    return [Result(**{**result.__dict__, "met": result.met and ok}), reference]


def _spec(server: Child, path: str, token: str, count: int, *, postgres: str | None) -> Load:
    request = {"post": BODY, "token": token}
    return {
        "url": server.url + path,
        "concurrency": CONCURRENCY,
        "requests": [request] * count,
        "warmup": [request] * CONCURRENCY,
        "server_pid": server.process.pid,
        "postgres": postgres,
    }

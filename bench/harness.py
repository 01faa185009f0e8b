"""Databases and processes for the benchmarks: a fresh migrated database per group, the real
server and its baselines in their own processes, and small helpers to build a workspace through
the real services."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.cpu import machine_ceiling
from trame_bot.bootstrap import Deps, build
from trame_bot.config import Settings, async_database_url
from trame_bot.documents import ConnectorDoc, WorkflowDoc
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, Status
from trame_bot.services import connectors, workflow_status, workflows, workspaces
from trame_bot.store.migrate import upgrade_async
from trame_bot.store.models import Workspace

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "xoxb-bench-token-0000"
SIGNING_SECRET = "bench-signing-secret-0000"
CLI = Actor.cli()
OWNER, MEMBER = "U0OWNER", "U0MEMBER"
REVIEWERS = tuple(f"U0REV{n:03d}" for n in range(20))
"""Approve clicks come from several reviewers, as in a real channel."""


@dataclass(frozen=True)
class Sizes:
    status_requests: int = 3_000
    """Per measurement of row 1 (each concurrency, each side)."""
    pause_rounds: int = 40
    """Pause + resume pairs per lane of row 2."""
    pause_lanes: int = 50
    """Concurrent requests of row 2, one workflow each."""
    pending_runs: int = 5_000
    api_requests: int = 3_000
    audit_appends: int = 20_000
    audit_events: int = 1_000_000
    audit_events_grown: int = 10_000_000
    """Row 6b: the log grown to this many events (rows 6–8 use `audit_events`)."""
    audit_queries: int = 2_000
    connectors: int = 20_000
    probe_timeout: float = 10.0
    """The sweep's probe timeout: the product's default (`--probe-timeout 10`)."""
    short_probe_timeout: float = 2.0
    memory_runs: int = 100_000
    repeats: int = 2
    """Baseline and subject alternate this many times; the best of each is kept."""
    teams: int = 50
    """Installed Slack teams of rows 1–3 in distributed mode, one workspace each."""
    slope_workflows: int = 10_000
    """Largest workspace of the slope rows; also measured at 10 and a tenth of it."""
    slope_workspaces: int = 1_000
    """Most workspaces of the slope rows; also measured at 1 and a tenth of it."""
    slope_requests: int = 200
    """`/trame status` requests per point of the slope rows."""
    slope_events: int = 1_000_000
    """Largest audit log of the slope rows (S5); also measured with only the workspace's own
    events and a tenth of it."""


FULL = Sizes()
QUICK = Sizes(
    status_requests=100,
    pause_rounds=2,
    pause_lanes=10,
    pending_runs=40,
    api_requests=100,
    audit_appends=500,
    audit_events=5_000,
    audit_events_grown=20_000,
    audit_queries=50,
    connectors=300,
    probe_timeout=1.0,
    short_probe_timeout=0.5,
    memory_runs=100,
    repeats=1,
    teams=3,
    slope_workflows=200,
    slope_workspaces=20,
    slope_requests=20,
    slope_events=2_000,
)


@dataclass(frozen=True)
class Target:
    """Where a run of the benchmarks keeps its databases and logs, and how big it is."""

    workdir: Path
    postgres_url: str | None
    sizes: Sizes
    profile_dir: Path | None = None
    """When set, every trame-bot server is recorded by py-spy into this folder."""
    outbox_process: bool = False
    """Rows 1–3 with the outbox worker in a process of its own (`serve --no-outbox` beside
    `trame-bot outbox`) instead of inside the server."""

    @property
    def dialect(self) -> str:
        return "postgresql" if self.postgres_url else "sqlite"

    async def fresh_database(self, name: str) -> str:
        """A new, migrated, empty database; returns its DATABASE_URL (as users write it).

        On PostgreSQL the one benchmark database is emptied (schema dropped) and migrated again.
        """
        if self.postgres_url:
            url = async_database_url(self.postgres_url)
            engine = create_async_engine(url)
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await engine.dispose()
            await upgrade_async(url)
            return self.postgres_url
        template = self.workdir / "template.db"
        if not template.exists():
            await upgrade_async(f"sqlite+aiosqlite:///{template}")
        path = self.workdir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)  # noqa: ASYNC240 (instant)
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"

    def deps(self, database_url: str) -> Deps:
        return build(Settings(database_url=async_database_url(database_url)))


# ---- child processes -------------------------------------------------------------------------


@dataclass
class Child:
    """A process started by `started`: its pid (for RSS) and its loopback base URL."""

    kind: str
    process: asyncio.subprocess.Process
    port: int
    log: Path
    helpers: dict[str, int] = field(default_factory=dict)
    """Processes that do this one's work elsewhere, by name (the outbox worker): their CPU is
    counted with it."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def status_kb(self, field: str) -> int:
        """A `kB` field of /proc/<pid>/status: VmRSS now, VmHWM the peak."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(status.split(f"{field}:")[1].split()[0])

    def rss_mb(self) -> float:
        return self.status_kb("VmRSS") / 1024

    def logged_errors(self) -> int:
        if not self.log.exists():
            return 0
        return sum(
            1 for line in self.log.read_text(errors="replace").splitlines() if " ERROR " in line
        )


def child_env(database_url: str | None = None, slack_api_url: str | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        env.pop(name, None)
    if database_url:
        env["DATABASE_URL"] = database_url
    if slack_api_url:
        env["SLACK_API_URL"] = slack_api_url
    return env


_serial = iter(range(1, 1_000_000))


@asynccontextmanager
async def started(
    kind: str, workdir: Path, env: dict[str, str], *, profile_dir: Path | None = None
) -> AsyncIterator[Child]:
    """`python -m bench.servers KIND` until the block ends (SIGTERM, then SIGKILL); recorded by
    py-spy (raw collapsed stacks) when `profile_dir` is given and py-spy is installed."""
    serial = next(_serial)
    log = workdir / f"{kind}-{serial}.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.servers",
            kind,
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    spy: asyncio.subprocess.Process | None = None
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        if not line:
            await process.wait()
            raise RuntimeError(f"{kind} server did not start:\n{log.read_text()[-3000:]}")
        py_spy = shutil.which("py-spy") or shutil.which(
            "py-spy", path=str(Path(sys.executable).parent)
        )
        if profile_dir is not None and py_spy:
            profile_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (instant)
            spy = await asyncio.create_subprocess_exec(
                py_spy,
                "record",
                "--pid",
                str(process.pid),
                "--format",
                "raw",
                "--rate",
                "200",
                "--output",
                str(profile_dir / f"{kind}-{serial}.txt"),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        yield Child(kind, process, int(json.loads(line)["port"]), log)
    finally:
        if spy is not None and spy.returncode is None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def fake_stats(fake: Child) -> dict[str, int]:
    async with aiohttp.ClientSession() as session, session.get(fake.url + "bench/stats") as r:
        return dict(await r.json())


async def seeded_cards(fake: Child, channel: str, count: int) -> list[str]:
    """Bot messages in the fake Slack standing for already posted cards; their ts."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.url + "bench/cards", params={"channel": channel, "count": count}) as r,
    ):
        return [str(ts) for ts in (await r.json())["ts"]]


async def wait_for(check: Any, *, within: float, every: float = 0.05) -> bool:
    """Poll the async `check` until it is true; False when `within` seconds passed first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(every)
    return True


# ---- load: baseline and subject in alternation ----------------------------------------------

Load = dict[str, Any]
"""A load generator spec, or its result (see `bench.loadgen`)."""


async def alternate(repeats: int, *, subject: Load, baseline: Load) -> tuple[Load, Load]:
    """Baseline then subject, `repeats` times; the best run of each (highest rate), so that a
    noisy moment on the machine penalises neither side."""
    from bench import loadgen

    best: dict[str, Load] = {}
    for _ in range(repeats):
        for name, spec in (("baseline", baseline), ("subject", subject)):
            result = await loadgen.run(spec)
            if name not in best or result["rps"] > best[name]["rps"]:
                best[name] = result
    return best["subject"], best["baseline"]


def all_ok(load: Load, status: str = "200") -> bool:
    return bool(load["statuses"] == {status: load["count"]})


def _latencies(load: Load, prefix: str = "") -> dict[str, Any]:
    return {
        f"{prefix}p50_ms": round(load["p50_ms"], 2),
        f"{prefix}p99_ms": round(load["p99_ms"], 2),
        f"{prefix}max_ms": round(load["max_ms"], 2),
    }


def load_details(subject: Load, baseline: Load) -> dict[str, Any]:
    return {
        "requests": subject["count"],
        "concurrency": subject["concurrency"],
        **_latencies(subject),
        **_latencies(baseline, "baseline_"),
        "statuses": subject["statuses"],
        "answers": subject["bodies"],
        "loadgen_cpu_share": round(subject["loadgen_cpu_share"], 2),
        "baseline_loadgen_cpu_share": round(baseline["loadgen_cpu_share"], 2),
        "server_cpu_share": round(subject["server_cpu_share"], 2),
        "server_cpu_ms_per_request": round(subject["server_cpu_ms_per_request"], 3),
        "baseline_server_cpu_ms_per_request": round(baseline["server_cpu_ms_per_request"], 3),
        "cpu_ms_per_request": subject["cpu_ms_per_request"],
        "baseline_cpu_ms_per_request": baseline["cpu_ms_per_request"],
        **machine_ceiling(
            subject["cpu_ms_per_request"],
            baseline["cpu_ms_per_request"].get("server", 0.0),
            baseline["rps"],
        ),
    }


# ---- a workspace, built through the real services -------------------------------------------


async def workspace(
    deps: Deps,
    key: str,
    channel: str,
    *,
    reviewers: Sequence[str] = REVIEWERS,
    connector_keys: Sequence[str] = ("crm", "sheets"),
) -> Workspace:
    created = await workspaces.create_workspace(
        deps.ctx,
        key,
        workspaces.WorkspaceSettings(
            name=key.title(), approvals_channel=channel, ops_channel=f"{channel}OPS"
        ),
        CLI,
    )
    await workspaces.set_role(deps.ctx, key, OWNER, Role.OWNER, CLI)
    await workspaces.set_role(deps.ctx, key, MEMBER, Role.MEMBER, CLI)
    for user in reviewers:
        await workspaces.set_role(deps.ctx, key, user, Role.MEMBER, CLI)
    for connector in connector_keys:
        # The bench workflow appends through `sheets`: least privilege wants it granted write.
        scopes = ["read", "write:finance"] if connector == "sheets" else ["read"]
        await connectors.apply_connector(
            deps.ctx,
            key,
            ConnectorDoc(
                key=connector, toolkit="salesforce", account=f"{key}/{connector}", scopes=scopes
            ),
            CLI,
        )
    return created.workspace


def workflow_doc(key: str, status: str = "pilot") -> WorkflowDoc:
    return WorkflowDoc.model_validate(
        {
            "key": key,
            "name": key.replace("-", " ").capitalize(),
            "status": status,
            "steps": [
                {"name": "Fetch", "tool": "salesforce.query", "connector": "crm", "access": "read"},
                {
                    "name": "Append",
                    "tool": "sheets.append",
                    "connector": "sheets",
                    "access": "write",
                },
            ],
            "triggers": [{"key": "nightly", "kind": "schedule"}],
        }
    )


async def workflow(deps: Deps, ws: str, key: str, *, live: bool = False) -> None:
    """A pilot workflow, or a live one (signed off, with a rollback plan)."""
    await workflows.apply_workflow(deps.ctx, ws, workflow_doc(key), CLI)
    if live:
        await workflow_status.change_status(
            deps.ctx,
            ws,
            key,
            Status.LIVE,
            CLI,
            sign_off=workflow_status.SignOff("client@example.com", "ticket BENCH-1"),
            rollback_plan="pause it",
        )


async def scalar(deps: Deps, sql: str, **params: Any) -> int:
    """One number from the database (counts that check what a benchmark did)."""
    async with deps.db.reading() as session:
        return int((await session.execute(text(sql), params)).scalar_one() or 0)

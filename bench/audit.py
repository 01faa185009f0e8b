"""Rows 5–8: the audit log at scale.

5. appends through `store.audit.append` (head locked once per transaction, canonical JSON,
   hash, the transaction's rows inserted in one executemany), against a raw driver
   `executemany` of the very same rows, in transactions of the same size;
6. the query `/trame audit workflow:KEY <week>` runs (`services.audit.list_events`) over a
   million events: its p95; 6b, how that cost grows: the same queries once the log has grown
   to ten million events (`--size audit_events_grown=N`), the growth written by the
   database itself (INSERT … SELECT over a generated series) after rows 7 and 8;
7. `trame-bot audit export` of a million events, CSV and JSON Lines, in a child process whose
   peak RSS is read from /proc (VmHWM), against `sqlite3 -csv` (`psql \\copy` on PostgreSQL)
   writing the same table;
8. `services.audit.verify_chain` over the million events, against hashlib over the same bytes
   (each event's stored bytes hashed; the database answers from its index which rows do not
   spell their bytes); 8b, the same with `full=True`, the database spelling every event.

The million events are written straight into the table (not through the services, which would
take an hour), each with its true chain hash, so that the verify succeeds.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text, update

from bench.harness import ROOT, Target, child_env, scalar, workspace
from bench.report import Result, at_least, at_most, at_most_times, check, measured
from trame_bot.bootstrap import Deps
from trame_bot.domain.actors import Actor
from trame_bot.domain.audit_chain import encoded_link, format_at
from trame_bot.domain.plan import canonical_json
from trame_bot.services import audit
from trame_bot.store import audit as audit_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.audit import AuditFilter
from trame_bot.store.models import AuditEvent, AuditHead, table

BATCH = 1_000
"""Rows per transaction for both sides of row 5."""
LOAD_BATCH = 20_000
WORKFLOWS, CONNECTORS = 200, 100
SPAN = timedelta(days=365)
COLUMNS = ", ".join(audit.COLUMNS)
CLI_WITH_PEAK = """
import sys
from trame_bot.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="trame-bot", standalone_mode=False)
finally:
    status = open("/proc/self/status").read()
    print("VmHWM", status.split("VmHWM:")[1].split()[0], file=sys.stderr)
"""
"""Runs the CLI, then reports its own peak RSS in kB. Not getrusage(RUSAGE_CHILDREN): a forked
child inherits the parent's high-water mark until exec, which would measure this process."""


async def run(target: Target) -> list[Result]:
    database = await target.fresh_database("audit")
    deps = target.deps(database)
    try:
        appends = await _appends(deps, target.sizes.audit_appends)
        ws = await workspace(deps, "acme", "C0ACME", reviewers=())
        loaded, blobs = await _load(deps, ws.id, "acme", target.sizes.audit_events)
        query = await _queries(deps, target.sizes.audit_queries)
        exports = await _exports(target, deps, database, ws.id)
        verify = await _verify(deps, database, blobs, target.sizes.repeats)
        del blobs
        # Last: the grown log's filler events do not chain (rows 7 and 8 are done with it).
        grown = await grow(deps, ws.id, target.sizes.audit_events_grown)
        grown_query = await _queries(deps, target.sizes.audit_queries, "6b", query, grown)
    finally:
        await deps.close()
    return [
        appends,
        query,
        grown_query,
        *exports,
        *verify,
        check("6–8", "a million events bulk-loaded with a valid chain", True, **loaded),
    ]


# ---- row 5 -----------------------------------------------------------------------------------


def _event(n: int) -> dict[str, Any]:
    kind = n % 3
    if kind == 0:
        key = f"wf-{n % WORKFLOWS:03d}"
        return {
            "actor": "slack:U0OWNER",
            "action": "workflow.status_changed",
            "entity_type": "workflow",
            "entity_id": key,
            "summary": f"workflow {key}: pilot → paused",
            "data": {"before": "pilot", "after": "paused"},
            "reason": "client asked for a pause during the audit",
        }
    if kind == 1:
        run_id = f"{n:032x}"
        return {
            "actor": "api:engine",
            "action": "run.requested",
            "entity_type": "run",
            "entity_id": run_id,
            "summary": f"run of wf-{n % WORKFLOWS:03d} requested by U0MEMBER: pending",
            "data": {"workflow": f"wf-{n % WORKFLOWS:03d}", "state": "pending", "version": 3},
            "reason": None,
        }
    key = f"conn-{n % CONNECTORS:03d}"
    return {
        "actor": "system",
        "action": "connector.health_changed",
        "entity_type": "connector",
        "entity_id": key,
        "summary": f"connector {key}: ok → error",
        "data": {"before": "ok", "after": "error", "error": "health check answered 500"},
        "reason": None,
    }


async def _appends(deps: Deps, count: int) -> Result:
    """The service path appends one event at a time (it must: each hash needs the previous
    one); the baseline inserts the same finished rows in one executemany per transaction."""
    subject = await workspace(deps, "appends", "C0APPENDS", reviewers=())
    raw = await workspace(deps, "raw", "C0RAW", reviewers=())
    async with deps.db.reading() as session:
        first = (await audit_store.head(session, subject.id)).seq
    now = deps.clock.now()
    started = time.perf_counter()
    for offset in range(0, count, BATCH):
        async with deps.db.transaction() as session:
            ws = await workspace_store.get(session, "appends")
            for n in range(offset, min(offset + BATCH, count)):
                await audit_store.append(session, ws, at=now, **_event(n))
    service = time.perf_counter() - started

    async with deps.db.reading() as session:
        rows = (
            await session.execute(
                select(*AuditEvent.__table__.columns)
                .where(AuditEvent.workspace_id == subject.id, AuditEvent.seq > first)
                .order_by(AuditEvent.seq)
            )
        ).all()
    names = [c.name for c in AuditEvent.__table__.columns if c.name != "id"]
    placeholders = ", ".join(
        f"${n}" if deps.db.dialect == "postgresql" else "?" for n in range(1, len(names) + 1)
    )
    sql = f"INSERT INTO audit_events ({', '.join(names)}) VALUES ({placeholders})"
    # The same rows, in another workspace; its own few events hold the low sequence numbers.
    values = [
        tuple(_raw_value(deps, name, getattr(r, name), raw.id) for name in names) for r in rows
    ]
    started = time.perf_counter()
    for offset in range(0, len(values), BATCH):
        async with deps.db.transaction() as session:
            conn = await session.connection()
            await conn.exec_driver_sql(sql, values[offset : offset + BATCH])
    baseline = time.perf_counter() - started
    return at_least(
        "5",
        f"audit appends through store.audit.append, {BATCH} per transaction",
        count / service,
        "events/s",
        len(values) / baseline,
        "raw executemany events/s",
        0.3,
        events=count,
    )


def _raw_value(deps: Deps, column: str, value: Any, workspace_id: int) -> Any:
    """A column value as the driver takes it (SQLite keeps UTC datetimes as naive text), moved
    to the baseline's workspace and past its own sequence numbers."""
    if column == "workspace_id":
        return workspace_id
    if column == "seq":
        return value + 1_000_000_000
    if isinstance(value, datetime) and deps.db.dialect == "sqlite":
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    return value


# ---- the million events ------------------------------------------------------------------------


def _links(workspace: str, head_seq: int, head_hash: str, count: int) -> Iterator[tuple[Any, ...]]:
    """`count` events after the head, spread over the last year, each with its chain hash: rows
    in `_LOADED` order, and last the bytes the hash covers."""
    start = datetime.now(UTC) - SPAN
    step = SPAN / max(count, 1)
    previous = head_hash
    for n in range(count):
        event = _event(n)
        at = start + step * n
        data = canonical_json(event["data"])
        encoded = encoded_link(
            workspace=workspace,
            seq=head_seq + 1 + n,
            at=format_at(at),
            actor=event["actor"],
            action=event["action"],
            entity_type=event["entity_type"],
            entity_id=event["entity_id"],
            summary=event["summary"],
            data=data,
            reason=event["reason"],
            prev_hash=previous,
        )
        digest = hashlib.sha256(encoded).hexdigest()
        yield (
            head_seq + 1 + n,
            at,
            event["actor"],
            event["action"],
            event["entity_type"],
            event["entity_id"],
            event["summary"],
            data,
            event["reason"],
            previous,
            digest,
            encoded,
        )
        previous = digest


_LOADED = (
    "seq",
    "at",
    "actor",
    "action",
    "entity_type",
    "entity_id",
    "summary",
    "data",
    "reason",
    "prev_hash",
    "hash",
)


async def _load(
    deps: Deps, workspace_id: int, key: str, count: int
) -> tuple[dict[str, Any], list[bytes]]:
    """Bulk-insert `count` chained events; returns timings and the bytes each hash covers."""
    async with deps.db.reading() as session:
        head = await audit_store.head(session, workspace_id)
    started = time.perf_counter()
    blobs: list[bytes] = []
    batch: list[dict[str, Any]] = []
    last = (head.seq, head.hash)
    for *values, encoded in _links(key, head.seq, head.hash, count):
        blobs.append(encoded)
        batch.append(
            {
                "workspace_id": workspace_id,
                **dict(zip(_LOADED, values, strict=True)),
                "encoded": encoded,
            }
        )
        if len(batch) == LOAD_BATCH:
            last = (batch[-1]["seq"], batch[-1]["hash"])
            await _insert(deps, batch)
            batch = []
    if batch:
        last = (batch[-1]["seq"], batch[-1]["hash"])
        await _insert(deps, batch)
    async with deps.db.transaction() as session:
        await session.execute(
            update(AuditHead)
            .where(AuditHead.workspace_id == workspace_id)
            .values(seq=last[0], hash=last[1])
        )
    return {"events": count, "load_seconds": round(time.perf_counter() - started, 1)}, blobs


async def _insert(deps: Deps, rows: list[dict[str, Any]]) -> None:
    """A Core executemany on the connection (an ORM bulk insert costs several times more)."""
    async with deps.db.transaction() as session:
        conn = await session.connection()
        await conn.execute(insert(table(AuditEvent)), rows)


# ---- row 6 -----------------------------------------------------------------------------------


async def _queries(
    deps: Deps,
    count: int,
    row: str = "6",
    smaller: Result | None = None,
    grown: dict[str, Any] | None = None,
) -> Result:
    """`/trame audit workflow:KEY since until`: one entity, one week, anywhere in the year.
    Row 6b asks the same of the grown log: how the p95 grows with the log (`smaller` is row
    6's result, `grown` how the log was grown)."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    actor = Actor.cli()
    timings = []
    sizes = []
    for n in range(count + 20):
        since = now - SPAN + timedelta(days=rng.uniform(0, 358))
        where = AuditFilter(
            "workflow", f"wf-{rng.randrange(WORKFLOWS):03d}", since, since + timedelta(days=7)
        )
        started = time.perf_counter()
        found = await audit.list_events(deps.ctx, "acme", where, actor, limit=50)
        if n >= 20:  # the first ones warm the connection pool and statement caches
            timings.append(time.perf_counter() - started)
            sizes.append(len(found))
    timings.sort()
    p95 = timings[int(0.95 * (len(timings) - 1))] * 1000
    details: dict[str, Any] = {
        "queries": count,
        "p50_ms": round(timings[len(timings) // 2] * 1000, 2),
        "max_ms": round(timings[-1] * 1000, 2),
        "mean_events_returned": round(sum(sizes) / len(sizes), 1),
    }
    if smaller is None:
        return at_most("6", "audit query, one entity, one week: p95", p95, "ms", 10, **details)
    events = (grown or {}).get("events", 0)
    return at_most(
        row,
        f"audit query as row 6, the log grown to {events:,} events: p95",
        p95,
        "ms",
        10,
        baseline=smaller.value,
        baseline_what="row 6's p95 ms",
        p95_growth=round(p95 / smaller.value, 2) if smaller.value else None,
        **details,
        **(grown or {}),
    )


# ---- row 6b: how cost grows ----------------------------------------------------------------


async def grow(deps: Deps, workspace_id: int, events: int) -> dict[str, Any]:
    """Grow the workspace's log to `events` with filler events like `_event`'s, over the same
    year, written by the database itself (INSERT … SELECT over a generated series, a million
    per transaction): the fastest bulk path, as no Python touches a row. Their hashes and bytes
    are placeholders, so the chain stops verifying here (and each of them goes into the index
    of events whose columns do not spell their bytes, which the database keeps at insert)."""
    have = await scalar(
        deps, "SELECT COUNT(*) FROM audit_events WHERE workspace_id = :ws", ws=workspace_id
    )
    first = 1 + await scalar(
        deps, "SELECT MAX(seq) FROM audit_events WHERE workspace_id = :ws", ws=workspace_id
    )
    count = max(events - have, 0)
    start = datetime.now(UTC) - SPAN
    step_us = max(int(SPAN.total_seconds() * 1_000_000) // max(count, 1), 1)
    sql = _GROW_POSTGRES if deps.db.dialect == "postgresql" else _GROW_SQLITE
    started, cpu = time.perf_counter(), time.process_time()
    for low in range(0, count, GROW_BATCH):
        async with deps.db.transaction() as session:
            if deps.db.dialect == "sqlite":
                # The entity index takes rows at 300 places at once: keep its pages in memory.
                await session.execute(text("PRAGMA cache_size = -262144"))
            await session.execute(
                text(sql),
                {
                    "ws": workspace_id,
                    "seq0": first,
                    "lo": low,
                    "hi": min(low + GROW_BATCH, count) - 1,
                    "start_us": int(start.timestamp() * 1_000_000),
                    "start": start,
                    "step_us": step_us,
                },
            )
    seconds = time.perf_counter() - started
    return {
        "events": have + count,
        "grown_by": count,
        "grow_seconds": round(seconds, 1),
        # SQLite works in this process (the driver's thread): its CPU shows how much of the
        # wall time was the work itself on a busy machine. PostgreSQL's is the server's.
        "grow_cpu_seconds": round(time.process_time() - cpu, 1),
        "grow_events_per_s": round(count / seconds) if seconds else None,
        "grow_method": "INSERT … SELECT over a generated series, 1M per transaction",
    }


GROW_BATCH = 1_000_000
_FILLER_HASH = "f" * 64
_GROW_SQLITE = f"""
WITH RECURSIVE n(i) AS (SELECT :lo UNION ALL SELECT i + 1 FROM n WHERE i < :hi)
INSERT INTO audit_events
    (workspace_id, seq, at, actor, action, entity_type, entity_id, summary, data, reason,
     prev_hash, hash, encoded)
SELECT :ws, :seq0 + i,
    strftime('%Y-%m-%d %H:%M:%S', (:start_us + i * :step_us) / 1000000, 'unixepoch')
        || printf('.%06d', (:start_us + i * :step_us) % 1000000),
    CASE i % 3 WHEN 0 THEN 'slack:U0OWNER' WHEN 1 THEN 'api:engine' ELSE 'system' END,
    CASE i % 3 WHEN 0 THEN 'workflow.status_changed' WHEN 1 THEN 'run.requested'
        ELSE 'connector.health_changed' END,
    CASE i % 3 WHEN 0 THEN 'workflow' WHEN 1 THEN 'run' ELSE 'connector' END,
    CASE i % 3 WHEN 0 THEN printf('wf-%03d', i % {WORKFLOWS})
        WHEN 1 THEN printf('%032x', i) ELSE printf('conn-%03d', i % {CONNECTORS}) END,
    'filler event ' || i,
    '{{"before":"pilot","after":"paused"}}',
    NULL,
    '{_FILLER_HASH}', '{_FILLER_HASH}', x''
FROM n
"""
_GROW_POSTGRES = f"""
INSERT INTO audit_events
    (workspace_id, seq, at, actor, action, entity_type, entity_id, summary, data, reason,
     prev_hash, hash, encoded)
SELECT :ws, :seq0 + i,
    CAST(:start AS timestamptz) + i * :step_us * interval '1 microsecond',
    CASE i % 3 WHEN 0 THEN 'slack:U0OWNER' WHEN 1 THEN 'api:engine' ELSE 'system' END,
    CASE i % 3 WHEN 0 THEN 'workflow.status_changed' WHEN 1 THEN 'run.requested'
        ELSE 'connector.health_changed' END,
    CASE i % 3 WHEN 0 THEN 'workflow' WHEN 1 THEN 'run' ELSE 'connector' END,
    CASE i % 3 WHEN 0 THEN 'wf-' || lpad((i % {WORKFLOWS})::text, 3, '0')
        WHEN 1 THEN lpad(to_hex(i), 32, '0') ELSE 'conn-' || lpad((i % {CONNECTORS})::text, 3, '0')
        END,
    'filler event ' || i,
    '{{"before":"pilot","after":"paused"}}',
    NULL,
    '{_FILLER_HASH}', '{_FILLER_HASH}', ''::bytea
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS i
"""


# ---- row 7 -----------------------------------------------------------------------------------


async def _timed(
    argv: list[str], env: dict[str, str], stdout: Path | None = None
) -> tuple[float, str, int]:
    """Run a command; its wall time, stderr and exit status."""
    started = time.perf_counter()
    with open(stdout or os.devnull, "wb") as out:  # noqa: ASYNC230 (opening is instant)
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=ROOT, stdout=out, stderr=asyncio.subprocess.PIPE
        )
        _, err = await process.communicate()
    return time.perf_counter() - started, err.decode(errors="replace"), process.returncode or 0


async def _exports(target: Target, deps: Deps, database: str, workspace_id: int) -> list[Result]:
    env = child_env(database)
    query = f"SELECT {COLUMNS} FROM audit_events WHERE workspace_id = {workspace_id} ORDER BY seq"
    baseline_file = target.workdir / "baseline.csv"
    if target.postgres_url:
        tool = shutil.which("psql")
        argv = [
            tool or "psql",
            "-X",
            "-q",
            target.postgres_url,
            "-c",
            f"\\copy ({query}) TO '{baseline_file}' WITH (FORMAT csv, HEADER)",
        ]
        stdout = None
        what = "psql \\copy s"
    else:
        tool = shutil.which("sqlite3")
        argv = [tool or "sqlite3", "-csv", "-header", database.removeprefix("sqlite:///"), query]
        stdout = baseline_file
        what = "sqlite3 -csv s"
    if tool is None:
        baseline, note = 0.0, f"{Path(argv[0]).name} is not installed: no baseline"
    else:
        baseline, err, status = await _timed(argv, env, stdout)
        note = err.strip()[-300:] if status else ""
    # The CLI's fixed cost, part of each export's time: start, check the schema, one query.
    floor = min(
        [
            (await _timed([sys.executable, "-m", "trame_bot", "audit", "list", "acme"], env))[0]
            for _ in range(3)
        ]
    )
    results = []
    peaks: dict[str, float] = {}
    for row, fmt in (("7a", "csv"), ("7b", "jsonl")):
        out = target.workdir / f"export.{fmt}"
        seconds, err, status = await _timed(
            [
                sys.executable,
                "-c",
                CLI_WITH_PEAK,
                "audit",
                "export",
                "acme",
                "--format",
                fmt,
                "-o",
                str(out),
            ],
            env,
        )
        reported = [line for line in err.splitlines() if line.startswith("VmHWM")]
        peaks[fmt] = int(reported[-1].split()[1]) / 1024 if reported else float("inf")
        lines = _count_lines(out) if status == 0 else 0
        result = at_most_times(
            row,
            f"audit export to {fmt.upper()} (CLI process)",
            seconds,
            "s",
            baseline,
            what,
            1.5,
            lines=lines,
            bytes=out.stat().st_size if out.exists() else 0,
            baseline_bytes=baseline_file.stat().st_size if baseline_file.exists() else 0,
            exit_status=status,
            error=err.strip()[-500:] if status else "",
            baseline_note=note,
            cli_floor_s=round(floor, 2),
        )
        results.append(replace(result, met=result.met and status == 0 and baseline > 0))
        out.unlink(missing_ok=True)
    baseline_file.unlink(missing_ok=True)
    peak = max(peaks.values())
    results.append(
        at_most(
            "7c",
            "audit export peak RSS (VmHWM)",
            peak,
            "MB",
            150,
            csv_mb=round(peaks["csv"], 1),
            jsonl_mb=round(peaks["jsonl"], 1),
        )
    )
    return results


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


# ---- row 8 -----------------------------------------------------------------------------------


async def _verify(deps: Deps, database: str, blobs: list[bytes], repeats: int) -> list[Result]:
    """Baseline then verify, `repeats` times, the best of each kept (as rows 1–4): on a
    shared machine one run of either can be slowed by a neighbour for seconds."""
    baseline = seconds = cpu_seconds = float("inf")
    for _ in range(max(repeats, 1)):
        started = time.perf_counter()
        digests = [hashlib.sha256(blob).hexdigest() for blob in blobs]
        baseline = min(baseline, time.perf_counter() - started)
        del digests
        started, cpu = time.perf_counter(), time.process_time()
        report = await audit.verify_chain(deps.ctx, "acme")
        if time.perf_counter() - started < seconds:
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    cli_seconds, _, status = await _timed(
        [sys.executable, "-m", "trame_bot", "audit", "verify", "acme"], child_env(database)
    )
    result = at_most_times(
        "8",
        "audit verify (services.audit.verify_chain)",
        seconds,
        "s",
        baseline,
        "hashlib over the bytes s",
        3,
        checked=report.checked,
        problem=report.problem,
        # SQLite works in this process (the driver's thread), PostgreSQL in the server's.
        process_cpu_seconds=round(cpu_seconds, 2),
        cli_seconds=round(cli_seconds, 2),
        cli_exit_status=status,
    )
    started = time.perf_counter()
    full = await audit.verify_chain(deps.ctx, "acme", full=True)
    full_seconds = time.perf_counter() - started
    return [
        replace(result, met=result.met and report.ok and status == 0),
        measured(
            "8b",
            "audit verify --full (every event spelled by the database)",
            full_seconds,
            "s",
            baseline,
            "hashlib over the bytes s",
            checked=full.checked,
            problem=full.problem,
        ),
    ]

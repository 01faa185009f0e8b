"""How cost grows: the slope rows (`S…`), figures with no target, each shown against the same
measure at the smallest size (its ratio is the growth).

- `S1`: `/trame status <workflow>` (the glance, row 1's command) with 10, a tenth of
  `Sizes.slope_workflows` (1,000) and all of it (10,000) workflows in the workspace;
- `S2`: `/trame status` (the workspace in figures: workflows by status, pending runs, …) at the
  same sizes;
- `S6`: `/trame workflows` (how many of each status, the first ten of each) at the same sizes;
- `S7`: `/trame connectors` (each connector's health and the grants no workflow uses) at the
  same sizes;
- `S8`: App Home's read (`services.overview.homes_for`: the list of `/trame workflows`, the
  connectors needing attention, the runs counted) at the same sizes, in process, as `S4` is
  timed; beside it, in its details, the full overview the digest reads (every workflow's line);
- `S9`: App Home's list of what waits for the person (`services.overview.waiting_for`), in
  process, for a member of the read workspace only (its five pending runs), with 1, 100 and
  1,000 workspaces in the database, each with five pending runs of its own;
- `S3`: `/trame status <workflow>` with 1, a tenth of `Sizes.slope_workspaces` (100) and all of
  it (1,000) workspaces in the database, each like the one read;
- `S4`: the approval card's Block Kit builder (`slack/blocks/card.py`) for 5, 50 and 500 steps,
  in process, with the heaviest content a card can carry (below);
- `S5`: `/trame status <workflow>` of a pilot (whose record is read from the audit log) with
  the workspace's own events, a tenth of `Sizes.slope_events` (100,000) and all of it
  (1,000,000) in its audit log: the filler is other entities' events, so the record stays
  the same and only the log grows.

`S1`–`S3` and `S5`–`S7` are signed requests over HTTP into the real server (one-workspace mode),
from the load generator in its own process at low concurrency (2), p50 and p95 of the ack. One
server serves every size of a row (the filler is added between sizes while it idles):
trame-bot keeps no rows in memory between requests, and the answers show it (the summary
counts every workflow; `details.answer` keeps the start of one).

**How the large sizes are built.** Through the services, a workflow costs about 7 ms on SQLite
and a workspace (two connectors, two members) about 55 ms: 10,000 workflows and 1,000
workspaces would take over two minutes before measuring anything. So the workspace that is
read, its ten workflows and its pending runs are made through the services (audit trail and
all), and the rest (the filler) is copied from them with bulk Core INSERTs: the workflows
(with their triggers), and whole workspaces (members, connectors, ten workflows each). The
filler has no audit events (its genesis and `workflow.applied` events are not copied), so the
audit table does not grow with it; the rows every status read touches do. S5's filler events
are written by the database itself (`bench.audit.grow`, as rows 6–8 grow their log), then
PostgreSQL is asked to `ANALYZE` the table, as its autovacuum would soon after.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import insert, select, text

from bench import loadgen
from bench.audit import grow
from bench.harness import (
    CLI,
    MEMBER,
    SIGNING_SECRET,
    Child,
    Load,
    Target,
    child_env,
    scalar,
    started,
    workflow,
    workspace,
)
from bench.report import Phases, Result, measured
from trame_bot.bootstrap import Deps
from trame_bot.documents import RunRequestDoc
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Access, Health, Role, RunState, Source, Status, Verdict
from trame_bot.domain.views import DecisionView, RunCard, StepView
from trame_bot.services import overview, run_requests, workspaces
from trame_bot.slack.blocks.card import approval_card
from trame_bot.store.models import Connector, Member, Run, Trigger, Workflow, Workspace
from trame_bot.store.runs import in_state

WS, CHANNEL = "acme", "C0ACME"
READ = "wf-00000"
"""The workflow `/trame status <workflow>` reads: a pilot with five pending runs."""
OWN_WORKFLOWS = 10
HOME_READER = "U0HOME"
"""A member of the read workspace only (S9): what waits for them is its five pending runs."""
CONCURRENCY = 2
CARD_STEPS = (5, 50, 500)
CHUNK = 1_000


def points(largest: int, smallest: int) -> list[int]:
    """The smallest size, a tenth of the largest and the largest, in order, without repeats."""
    return sorted({smallest, max(smallest, largest // 10), max(smallest, largest)})


async def run(target: Target) -> list[Result]:
    phase = Phases("slope")
    # Status answers in its ack; the fake Slack is there for Bolt's auth.test.
    async with started("fake", target.workdir, child_env()) as fake:
        results = await _by_workflows(target, fake)
        phase("workflows")
        results += await _by_workspaces(target, fake)
        phase("workspaces")
        results += await _by_events(target, fake)
        phase("audit events")
    results += _card_build()
    phase("card")
    return results


# ---- status with more workflows, more workspaces ----------------------------------------------


async def _read_workspace(deps: Deps) -> int:
    """The workspace that is read, through the services: ten pilot workflows, five pending runs
    of the first (its glance lists them); its id."""
    created = await workspace(deps, WS, CHANNEL, reviewers=())
    for n in range(OWN_WORKFLOWS):
        await workflow(deps, WS, f"wf-{n:05d}")
    for _ in range(5):
        doc = RunRequestDoc(requested_by=MEMBER)
        await run_requests.request_run(deps.ctx, WS, READ, doc, Actor.api("engine"))
    return created.id


async def _by_workflows(target: Target, fake: Child) -> list[Result]:
    sizes = target.sizes
    database = await target.fresh_database("slope-workflows")
    deps = target.deps(database)
    glances: list[Result] = []
    overviews: list[Result] = []
    lists: list[Result] = []
    connector_lists: list[Result] = []
    homes: list[Result] = []
    try:
        ws_id = await _read_workspace(deps)
        have = OWN_WORKFLOWS
        env = child_env(database, fake.url + "api/")
        async with started("trame", target.workdir, env, profile_dir=target.profile_dir) as trame:
            for n in points(sizes.slope_workflows, OWN_WORKFLOWS):
                await _copy_workflows(deps, ws_id, range(have, n))
                have = n
                glance = await _status(trame, f"status {READ}", sizes.slope_requests)
                overview = await _status(trame, "status", max(10, sizes.slope_requests // 5))
                listed = await _status(trame, "workflows", max(10, sizes.slope_requests // 5))
                connectors = await _status(trame, "connectors", max(10, sizes.slope_requests // 5))
                what = f"{n:,} workflows"
                glances.append(_row("S1", f"/trame status {READ}, {what}", "workflows", n, glance))
                overviews.append(
                    _row("S2", f"/trame status (overview), {what}", "workflows", n, overview)
                )
                lists.append(_row("S6", f"/trame workflows, {what}", "workflows", n, listed))
                connector_lists.append(
                    _row("S7", f"/trame connectors, {what}", "workflows", n, connectors)
                )
                homes.append(await _home_read(deps, what, n))
    finally:
        await deps.close()
    return [
        *_relative(glances),
        *_relative(overviews),
        *_relative(lists),
        *_relative(connector_lists),
        *_relative(homes),
    ]


async def _home_read(deps: Deps, what: str, size: int) -> Result:
    """App Home's read for the person who opens it, in process (the listener then renders and
    publishes it; its ack does not wait for either), and the digest's full overview."""
    home = await _timed(lambda: overview.homes_for(deps.ctx, MEMBER))
    full = await _timed(lambda: overview.overview(deps.ctx, WS, Actor.slack(MEMBER)))
    return _timed_row(
        "S8",
        f"App Home's read, {what}",
        "workflows",
        size,
        home,
        digest_overview_p50_ms=round(median(full), 3),
        digest_overview_calls=len(full),
    )


async def _timed(read: Callable[[], Awaitable[object]]) -> list[float]:
    """Milliseconds per call of `read`, sorted: once to warm, then at least three times and
    for about half a second (at most 200)."""
    await read()
    timings: list[float] = []
    deadline = time.perf_counter() + 0.5
    while len(timings) < 3 or (time.perf_counter() < deadline and len(timings) < 200):
        started = time.perf_counter()
        await read()
        timings.append((time.perf_counter() - started) * 1000)
    return sorted(timings)


def _timed_row(
    row: str, what: str, axis: str, size: int, timings: Sequence[float], **extra: Any
) -> Result:
    """A row timed in process (`timings` sorted, in ms): its p50, with its p95 and max."""
    return measured(
        row,
        what,
        median(timings),
        "ms",
        0.0,
        "",
        axis=axis,
        size=size,
        series=f"{what.split(',')[0]} (in process)",
        p50_ms=round(median(timings), 4),
        p95_ms=round(loadgen.percentile(timings, 0.95), 4),
        max_ms=round(timings[-1], 4),
        calls=len(timings),
        **extra,
    )


async def _by_workspaces(target: Target, fake: Child) -> list[Result]:
    sizes = target.sizes
    database = await target.fresh_database("slope-workspaces")
    deps = target.deps(database)
    found: list[Result] = []
    waiting: list[Result] = []
    try:
        ws_id = await _read_workspace(deps)
        await workspaces.set_role(deps.ctx, WS, HOME_READER, Role.MEMBER, CLI)
        have = 1
        env = child_env(database, fake.url + "api/")
        async with started("trame", target.workdir, env, profile_dir=target.profile_dir) as trame:
            for n in points(sizes.slope_workspaces, 1):
                await _copy_workspaces(deps, ws_id, range(have, n))
                have = n
                glance = await _status(trame, f"status {READ}", sizes.slope_requests)
                what = f"{n:,} workspace{'s' if n > 1 else ''}"
                found.append(_row("S3", f"/trame status {READ}, {what}", "workspaces", n, glance))
                waits = await _timed(lambda: overview.waiting_for(deps.ctx, HOME_READER))
                shown = len(await overview.waiting_for(deps.ctx, HOME_READER))
                waiting.append(
                    _timed_row(
                        "S9", f"App Home's waiting list, {what}", "workspaces", n, waits, runs=shown
                    )
                )
    finally:
        await deps.close()
    return [*_relative(found), *_relative(waiting)]


async def _by_events(target: Target, fake: Child) -> list[Result]:
    sizes = target.sizes
    database = await target.fresh_database("slope-events")
    deps = target.deps(database)
    found: list[Result] = []
    try:
        ws_id = await _read_workspace(deps)
        own = await scalar(
            deps, "SELECT COUNT(*) FROM audit_events WHERE workspace_id = :ws", ws=ws_id
        )
        env = child_env(database, fake.url + "api/")
        async with started("trame", target.workdir, env, profile_dir=target.profile_dir) as trame:
            for n in points(sizes.slope_events, own):
                grown = await grow(deps, ws_id, n)
                if deps.db.dialect == "postgresql":
                    async with deps.db.transaction() as session:
                        await session.execute(text("ANALYZE audit_events"))
                glance = await _status(trame, f"status {READ}", sizes.slope_requests)
                what = f"/trame status {READ}, {n:,} audit events"
                found.append(
                    _row("S5", what, "audit events", n, glance, grow_seconds=grown["grow_seconds"])
                )
    finally:
        await deps.close()
    return _relative(found)


async def _status(server: Child, command: str, count: int) -> Load:
    # Not a failure of the run: a status slower than Slack's 3 s budget is answered 404 by Bolt
    # ("unhandled request"); the row keeps its statuses and says how many were answered.
    request = {"command": command, "user": MEMBER, "channel": CHANNEL}
    return await loadgen.run(
        {
            "url": server.url + "slack/events",
            "signing_secret": SIGNING_SECRET,
            "concurrency": CONCURRENCY,
            "requests": [request] * count,
            "warmup": [request] * (2 * CONCURRENCY),
            "server_pid": server.process.pid,
        }
    )


def _row(row: str, what: str, axis: str, size: int, load: Load, **extra: Any) -> Result:
    return measured(
        row,
        what,
        load["p50_ms"],
        "ms",
        0.0,
        "",
        axis=axis,
        size=size,
        series=what.split(",")[0],
        p50_ms=round(load["p50_ms"], 3),
        p95_ms=round(load["p95_ms"], 3),
        max_ms=round(load["max_ms"], 3),
        requests=load["count"],
        answered=load["statuses"].get("200", 0),
        statuses=load["statuses"],
        concurrency=load["concurrency"],
        server_cpu_ms_per_request=round(load["server_cpu_ms_per_request"], 3),
        answer=next(iter(load["bodies"]), ""),
        **extra,
    )


def _relative(found: Sequence[Result]) -> list[Result]:
    """Rows `a`, `b`, `c` by size, each against the smallest size's p50."""
    first = found[0]
    return [
        measured(
            f"{r.row}{'abcdefgh'[n]}",
            r.what,
            r.value,
            r.unit,
            first.value,
            f"p50 ms at {first.details['size']:,} {first.details['axis']}",
            **r.details,
        )
        for n, r in enumerate(found)
    ]


# ---- the filler, copied with Core -------------------------------------------------------------


async def _rows(deps: Deps, table: Any, *where: Any) -> list[dict[str, Any]]:
    async with deps.db.reading() as session:
        found = (await session.execute(select(table).where(*where))).mappings().all()
    return [{k: v for k, v in row.items() if k != "id"} for row in found]


async def _insert(deps: Deps, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        async with deps.db.transaction() as session:
            await session.execute(insert(table), rows[start : start + CHUNK])


async def _ids(deps: Deps, column: Any, *where: Any) -> dict[str, int]:
    """key → id of the rows `where` selects (`column` is the key column)."""
    table = column.table
    async with deps.db.reading() as session:
        found = await session.execute(select(column, table.c.id).where(*where))
        return {str(key): int(id_) for key, id_ in found.tuples().all()}


async def _copy_workflows(deps: Deps, ws_id: int, numbers: range) -> None:
    """Workflows `wf-<n>` for `numbers` in workspace `ws_id`, copies of `wf-00001` (a pilot
    that was never run) with its triggers."""
    if not numbers:
        return
    workflows, triggers = Workflow.__table__, Trigger.__table__
    [template] = await _rows(deps, workflows, workflows.c.key == "wf-00001")
    template_id = (await _ids(deps, workflows.c.key, workflows.c.key == "wf-00001"))["wf-00001"]
    its_triggers = await _rows(deps, triggers, triggers.c.workflow_id == template_id)
    keys = [f"wf-{n:05d}" for n in numbers]
    rows = [
        {**template, "workspace_id": ws_id, "key": key, "name": key.replace("-", " ").title()}
        for key in keys
    ]
    await _insert(deps, workflows, rows)
    ids = await _ids(
        deps,
        workflows.c.key,
        workflows.c.workspace_id == ws_id,
        workflows.c.key >= keys[0],
        workflows.c.key <= keys[-1],
    )
    await _insert(
        deps,
        triggers,
        [{**t, "workflow_id": ids[key]} for key in keys for t in its_triggers],
    )


async def _copy_workspaces(deps: Deps, ws_id: int, numbers: range) -> None:
    """Workspaces `fill-<n>` for `numbers`, copies of the read one: its members (but
    `HOME_READER`), connectors, its ten workflows with their triggers and its pending runs
    (not its audit trail)."""
    if not numbers:
        return
    workspaces, members, connectors = (
        Workspace.__table__,
        Member.__table__,
        Connector.__table__,
    )
    workflows, triggers = Workflow.__table__, Trigger.__table__
    [template] = await _rows(deps, workspaces, workspaces.c.id == ws_id)
    its_members = [
        m
        for m in await _rows(deps, members, members.c.workspace_id == ws_id)
        if m["slack_user_id"] != HOME_READER
    ]
    its_connectors = await _rows(deps, connectors, connectors.c.workspace_id == ws_id)
    its_workflows = await _rows(deps, workflows, workflows.c.workspace_id == ws_id)
    workflow_ids = await _ids(deps, workflows.c.key, workflows.c.workspace_id == ws_id)
    its_triggers = await _rows(
        deps, triggers, triggers.c.workflow_id.in_(list(workflow_ids.values()))
    )
    by_workflow: dict[int, list[dict[str, Any]]] = {}
    for t in its_triggers:
        by_workflow.setdefault(int(t["workflow_id"]), []).append(t)
    keys = [f"fill-{n:05d}" for n in numbers]
    await _insert(
        deps,
        workspaces,
        [
            {
                **template,
                "key": key,
                "name": key.title(),
                "approvals_channel": f"C0F{n:05d}",
                "ops_channel": f"C0F{n:05d}OPS",
            }
            for n, key in zip(numbers, keys, strict=True)
        ],
    )
    ids = await _ids(deps, workspaces.c.key, workspaces.c.key.in_(keys))
    await _insert(deps, members, [{**m, "workspace_id": ids[k]} for k in keys for m in its_members])
    await _insert(
        deps,
        connectors,
        [
            {**c, "workspace_id": ids[k], "account": f"{k}/{c['key']}"}
            for k in keys
            for c in its_connectors
        ],
    )
    await _insert(
        deps, workflows, [{**w, "workspace_id": ids[k]} for k in keys for w in its_workflows]
    )
    new = await _workflow_ids(deps, list(ids.values()))
    rows = []
    for (_, key), new_id in new.items():
        for t in by_workflow.get(workflow_ids[key], []):
            rows.append({**t, "workflow_id": new_id})
    await _insert(deps, triggers, rows)
    runs = Run.__table__
    its_runs = await _rows(deps, runs, runs.c.workspace_id == ws_id, in_state(RunState.PENDING))
    key_of = {id_: key for key, id_ in workflow_ids.items()}
    await _insert(
        deps,
        runs,
        [
            {
                **r,
                "id": uuid.uuid4().hex,
                "workspace_id": ids[k],
                "workflow_id": new[(ids[k], key_of[r["workflow_id"]])],
            }
            for k in keys
            for r in its_runs
        ],
    )


async def _workflow_ids(deps: Deps, ws_ids: list[int]) -> dict[tuple[int, str], int]:
    workflows = Workflow.__table__
    found: dict[tuple[int, str], int] = {}
    async with deps.db.reading() as session:
        for start in range(0, len(ws_ids), CHUNK):
            rows = await session.execute(
                select(workflows.c.workspace_id, workflows.c.key, workflows.c.id).where(
                    workflows.c.workspace_id.in_(ws_ids[start : start + CHUNK])
                )
            )
            for ws, key, id_ in rows.tuples().all():
                found[(int(ws), str(key))] = int(id_)
    return found


# ---- the approval card -----------------------------------------------------------------------


def heaviest_card(steps: int) -> RunCard:
    """A pending production run whose every part is as long as a card shows: step names at the
    120-character cut and full of characters to escape, every step writing through an unhealthy
    connector whose scopes widened (all three flags), twelve required details, three prompt
    warnings, fifteen reviewers, ten decisions (approvals so far, with reasons), a fingerprint,
    an expiry, and the production confirm on Approve."""
    now = datetime(2025, 1, 1, 12, tzinfo=UTC)
    return RunCard(
        run_id="run_" + "0" * 28,
        workspace_key="acme",
        channel=CHANNEL,
        slack_ts="1700000000.000100",
        workflow_key="quarterly-close-" + "x" * 80,
        workflow_name="Quarterly close <finance> & reconciliation " + "é" * 100,
        workflow_status=Status.LIVE,
        production=True,
        requested_by="U0REQUESTER",
        source=Source.TRIGGER,
        trigger="nightly-" + "t" * 60,
        steps=tuple(
            StepView(
                name=f"Step {n} <update> & append {'&<>' * 40}",
                tool=f"sheets.append_rows_{n}_" + "a" * 80,
                connector=f"sheets-{n % 7}-" + "c" * 80,
                access=Access.WRITE,
                health=Health.NEEDS_ATTENTION if n % 2 else Health.DISCONNECTED,
                scopes_widened=True,
            )
            for n in range(steps)
        ),
        details={f"detail_{n}_<&>" + "k" * 40: "v" * 200 for n in range(12)},
        prompt_warnings=tuple(f"the prompt mentions a secret #{n}" for n in range(3)),
        fingerprint="f" * 64,
        approvals=10,
        required_approvals=12,
        reviewers=tuple(f"U0REV{n:03d}" for n in range(15)),
        state=RunState.PENDING,
        reason=None,
        decided_by=None,
        decided_at=None,
        requested_at=now,
        expires_at=now + timedelta(hours=24),
        decisions=tuple(
            DecisionView(f"U0REV{n:03d}", Verdict.APPROVE, "looks right <ok> & " * 10, None, now)
            for n in range(10)
        ),
    )


def _card_build() -> list[Result]:
    found = []
    for steps in CARD_STEPS:
        card = heaviest_card(steps)
        approval_card(card)  # warm: first calls import and cache
        timings: list[float] = []
        deadline = time.perf_counter() + 0.5
        while len(timings) < 30 or (time.perf_counter() < deadline and len(timings) < 2_000):
            started = time.perf_counter()
            _, blocks = approval_card(card)
            timings.append((time.perf_counter() - started) * 1000)
        found.append(
            _timed_row(
                "S4",
                f"approval card build, {steps} steps (heaviest content)",
                "steps",
                steps,
                sorted(timings),
                blocks=len(blocks),
            )
        )
    return _relative(found)

"""Rows 1–3: `/trame status`, `/trame pause|resume` and Approve clicks, as signed Slack requests
over real HTTP into the real server, each against a bare Bolt app served the same way.

Three processes besides this one: the load generator, the server under test (trame-bot or the
bare app, one at a time under load) and the fake Slack. The fake runs apart from the server so
that its work (Block Kit validation, as Slack does on its side) and its memory are not counted
as trame-bot's; all of them share the machine's two cores, so the baseline runs under the same
conditions, in alternation with the subject.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from sqlalchemy import text

from bench import loadgen
from bench.harness import (
    MEMBER,
    OWNER,
    REVIEWERS,
    SIGNING_SECRET,
    Child,
    Load,
    Sizes,
    Target,
    all_ok,
    alternate,
    child_env,
    fake_stats,
    load_details,
    scalar,
    started,
    wait_for,
    workflow,
    workspace,
)
from bench.report import Result, at_least, at_most, check
from trame_bot.bootstrap import Deps
from trame_bot.documents import RunRequestDoc
from trame_bot.domain.actors import Actor
from trame_bot.services import runs

STATUS_WS, STATUS_CH = "acme", "C0ACME"
PAUSE_WS, PAUSE_CH = "initech", "C0INITECH"
CLICK_WS, CLICK_CH = "globex", "C0GLOBEX"
CLICK_CONCURRENCY = 50
CARDS_WAITING = "SELECT count(*) FROM outbox WHERE kind = 'slack.card' AND state = 'pending'"


async def run(target: Target) -> list[Result]:
    sizes = target.sizes
    database = await target.fresh_database("slack")
    deps = target.deps(database)
    try:
        pending = await _arrange(deps, sizes)
        async with started("fake", target.workdir, child_env()) as fake:
            env = child_env(database, fake.url + "api/")
            async with (
                started("bare", target.workdir, env) as bare,
                started("trame", target.workdir, env, profile_dir=target.profile_dir) as trame,
            ):
                posting = await _cards_posted(deps, len(pending))
                results = [
                    *await _status(sizes, trame, bare, fake),
                    *await _pause_resume(deps, sizes, trame, bare, fake),
                    *await _approvals(deps, trame, bare, fake, pending, posting),
                ]
                errors = trame.logged_errors()
    finally:
        await deps.close()
    return [replace(r, details={**r.details, "server_errors_logged": errors}) for r in results]


async def _arrange(deps: Deps, sizes: Sizes) -> list[str]:
    """Three workspaces: one to read, one to pause and resume, one full of pending runs."""
    await workspace(deps, STATUS_WS, STATUS_CH)
    for n in range(5):
        await workflow(deps, STATUS_WS, f"wf-{n}")
    for _ in range(5):
        await _request(deps, STATUS_WS, "wf-0")
    await workspace(deps, PAUSE_WS, PAUSE_CH)
    for lane in range(sizes.pause_lanes):
        await workflow(deps, PAUSE_WS, f"wf-{lane:03d}", live=lane % 2 == 0)
    await workspace(deps, CLICK_WS, CLICK_CH)
    await workflow(deps, CLICK_WS, "approvals")
    return [await _request(deps, CLICK_WS, "approvals") for _ in range(sizes.pending_runs)]


async def _request(deps: Deps, ws: str, wf: str) -> str:
    doc = RunRequestDoc(requested_by=MEMBER)
    return (await runs.request_run(deps.ctx, ws, wf, doc, Actor.api("engine"))).run.id


async def _cards_posted(deps: Deps, count: int) -> dict[str, float]:
    """The server posts every pending card when it starts: wait for the last one."""
    started_at = time.perf_counter()

    async def posted() -> bool:
        return (
            await scalar(deps, "SELECT count(*) FROM runs WHERE slack_ts IS NULL") == 0
            and await scalar(deps, "SELECT count(*) FROM outbox WHERE state = 'pending'") == 0
        )

    if not await wait_for(posted, within=60 + count / 10, every=0.1):
        raise RuntimeError("the server did not post the approval cards in time")
    elapsed = time.perf_counter() - started_at
    return {"cards_posted": count, "cards_posted_per_s": count / elapsed if elapsed else 0.0}


def _spec(server: Child, fake: Child, requests: list[Load], concurrency: int) -> Load:
    warmup = [
        {"command": "help", "user": MEMBER, "channel": STATUS_CH} for _ in range(2 * concurrency)
    ]
    return {
        "url": server.url + "slack/events",
        "signing_secret": SIGNING_SECRET,
        "fake_url": fake.url,
        "concurrency": concurrency,
        "requests": requests,
        "warmup": warmup,
        "server_pid": server.process.pid,
    }


async def _status(sizes: Sizes, trame: Child, bare: Child, fake: Child) -> list[Result]:
    requests = [
        {"command": f"status wf-{n % 5}", "user": MEMBER, "channel": STATUS_CH}
        for n in range(sizes.status_requests)
    ]
    results = []
    for concurrency, row in ((10, "1a"), (50, "1c")):
        subject, baseline = await alternate(
            sizes.repeats,
            subject=_spec(trame, fake, requests, concurrency),
            baseline=_spec(bare, fake, requests, concurrency),
        )
        details = load_details(subject, baseline)
        rate = at_least(
            row,
            f"/trame status acks/s, {concurrency} concurrent",
            subject["rps"],
            "req/s",
            baseline["rps"],
            "bare Bolt acks/s",
            0.7,
            **details,
        )
        results.append(replace(rate, met=rate.met and all_ok(subject)))
        if concurrency == 10:
            results.append(
                at_most(
                    "1b",
                    "/trame status p99 ack, 10 concurrent",
                    subject["p99_ms"],
                    "ms",
                    50,
                    baseline=baseline["p99_ms"],
                    baseline_what="bare Bolt p99 ms",
                    p50_ms=round(subject["p50_ms"], 2),
                    baseline_p50_ms=round(baseline["p50_ms"], 2),
                )
            )
    return results


async def _pause_resume(
    deps: Deps, sizes: Sizes, trame: Child, bare: Child, fake: Child
) -> list[Result]:
    requests: list[Load] = []
    for lane in range(sizes.pause_lanes):
        for _ in range(sizes.pause_rounds):
            for command in (f"pause wf-{lane:03d} bench load", f"resume wf-{lane:03d}"):
                requests.append(
                    {"command": command, "user": OWNER, "channel": PAUSE_CH, "lane": lane}
                )
    changes = "SELECT count(*) FROM audit_events WHERE action = 'workflow.status_changed'"
    posts = "SELECT count(*) FROM outbox WHERE kind = 'slack.post'"
    changes_before, posts_before = await scalar(deps, changes), await scalar(deps, posts)
    subject, baseline = await alternate(
        sizes.repeats,
        subject=_spec(trame, fake, requests, sizes.pause_lanes),
        baseline=_spec(bare, fake, requests, sizes.pause_lanes),
    )
    expected = len(requests) * sizes.repeats
    written = await scalar(deps, changes) - changes_before
    queued = await scalar(deps, posts) - posts_before

    async def delivered() -> bool:
        return await scalar(deps, "SELECT count(*) FROM outbox WHERE state = 'pending'") == 0

    drained = await wait_for(delivered, within=120)
    details = {
        **load_details(subject, baseline),
        "audit_events_written": written,
        "outbox_rows_written": queued,
        "expected_writes": expected,
        "outbox_drained": drained,
    }
    rate = at_least(
        "2a",
        f"/trame pause|resume acks/s, {sizes.pause_lanes} concurrent",
        subject["rps"],
        "req/s",
        baseline["rps"],
        "bare Bolt acks/s",
        0.4,
        **details,
    )
    every_write = written == expected and queued == expected and all_ok(subject)
    return [
        replace(rate, met=rate.met and every_write),
        at_most(
            "2b",
            f"slowest pause|resume ack, {sizes.pause_lanes} concurrent",
            subject["max_ms"],
            "ms",
            3000,
            baseline=baseline["max_ms"],
            baseline_what="bare Bolt slowest ack ms",
            strict=True,
        ),
    ]


async def _approvals(
    deps: Deps,
    trame: Child,
    bare: Child,
    fake: Child,
    pending: list[str],
    posting: dict[str, float],
) -> list[Result]:
    """Every pending run gets one Approve click; the figure is clicks whose card update reached
    Slack per second, from the first click until the last card update was delivered."""
    async with deps.db.reading() as session:
        cards: dict[str, str] = dict(
            (
                await session.execute(
                    text("SELECT id, slack_ts FROM runs WHERE slack_ts IS NOT NULL")
                )
            )
            .tuples()
            .all()
        )
    requests: list[Load] = [
        {
            "click": run_id,
            "user": REVIEWERS[n % len(REVIEWERS)],
            "channel": CLICK_CH,
            "ts": cards[run_id],
        }
        for n, run_id in enumerate(pending)
    ]
    baseline = await loadgen.run(_spec(bare, fake, requests, CLICK_CONCURRENCY))
    updates_before = (await fake_stats(fake)).get("chat.update ok", 0)
    ws = await scalar(deps, "SELECT id FROM workspaces WHERE key = :key", key=CLICK_WS)
    load = asyncio.create_task(loadgen.run(_spec(trame, fake, requests, CLICK_CONCURRENCY)))

    async def delivered() -> bool:
        # Approve commits before it acks: once every click is answered, what is left is the
        # card updates in the outbox.
        return load.done() and await scalar(deps, CARDS_WAITING) == 0

    done = await wait_for(delivered, within=300 + len(pending) / 5)
    delivered_at = time.time()
    subject = await load

    async def drained() -> bool:
        return await scalar(deps, "SELECT count(*) FROM outbox WHERE state = 'pending'") == 0

    await wait_for(drained, within=120)
    drained_at = time.time()
    start = subject["started_at"]
    rate = len(pending) / (delivered_at - start) if done else 0.0
    details = {
        **load_details(subject, baseline),
        "acks_per_s": round(subject["rps"], 1),
        "seconds_to_last_card_update": round(delivered_at - start, 2),
        "seconds_to_outbox_drained": round(drained_at - start, 2),
        **posting,
    }
    result = at_least(
        "3a",
        f"Approve clicks on {len(pending)} pending runs, card updated, per s",
        rate,
        "clicks/s",
        baseline["rps"],
        "bare Bolt acks/s",
        0.4,
        **details,
    )
    return [result, await _decided_once(deps, ws, len(pending), fake, updates_before)]


async def _decided_once(
    deps: Deps, ws: int, count: int, fake: Child, updates_before: int
) -> Result:
    params = {"ws": ws}
    approved = await scalar(
        deps, "SELECT count(*) FROM runs WHERE workspace_id = :ws AND state = 'approved'", **params
    )
    decisions = await scalar(
        deps,
        "SELECT count(*) FROM decisions d JOIN runs r ON r.id = d.run_id WHERE r.workspace_id = :ws",
        **params,
    )
    decided_runs = await scalar(
        deps,
        "SELECT count(DISTINCT d.run_id) FROM decisions d JOIN runs r ON r.id = d.run_id "
        "WHERE r.workspace_id = :ws",
        **params,
    )
    audited = await scalar(
        deps,
        "SELECT count(*) FROM audit_events WHERE workspace_id = :ws AND action = 'run.approved'",
        **params,
    )
    audited_runs = await scalar(
        deps,
        "SELECT count(DISTINCT entity_id) FROM audit_events "
        "WHERE workspace_id = :ws AND action = 'run.approved'",
        **params,
    )
    stats = await fake_stats(fake)
    updates = stats.get("chat.update ok", 0) - updates_before
    refused = {k: v for k, v in stats.items() if not k.endswith(" ok")}
    ok = (
        approved == decisions == decided_runs == audited == audited_runs == count
        and updates >= count
        and not refused
    )
    return check(
        "3b",
        "every run decided once, its card updated",
        ok,
        runs=count,
        approved=approved,
        decisions=decisions,
        runs_with_a_decision=decided_runs,
        approved_audit_events=audited,
        card_updates=updates,
        slack_refusals=refused,
    )

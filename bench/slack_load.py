"""Rows 1–3: `/trame status`, `/trame pause|resume` and Approve clicks, as signed Slack requests
over real HTTP into the real server, each against a bare Bolt app served the same way, in both
Slack modes (docs/slack-modes.md):

- one workspace (rows `1a`…`3b`): one bot token, three workspaces of one Slack;
- distributed (rows `1a-d`…`3b-d`): `Sizes.teams` Slack teams (50) installed by OAuth, one
  workspace bound to each, their tokens sealed in `slack_installations`. Every signed request
  carries its team's id, so the server finds the team's installation (Bolt's authorize) and
  its workspace by team and channel, and the fake Slack answers each team's own token only.
  The baseline is the same bare Bolt app (one token; it only acks).

Three processes besides this one: the load generator, the server under test (trame-bot or the
bare app, one at a time under load) and the fake Slack. The fake runs apart from the server so
that its work (Block Kit validation, as Slack does on its side) and its memory are not counted
as trame-bot's; all of them share the machine's two cores, so the baseline runs under the same
conditions, in alternation with the subject.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import aiohttp
from sqlalchemy import text

from bench import loadgen
from bench.cpu import Meter, database_name, machine_ceiling, per_request
from bench.harness import (
    CLI,
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
from bench.report import Phases, Result, at_least, at_most, at_most_times, check, measured
from trame_bot.bootstrap import Deps, build
from trame_bot.config import Settings, async_database_url
from trame_bot.documents import RunRequestDoc
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role
from trame_bot.services import run_requests, workspaces
from trame_bot.store import installations as installation_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.models import SlackInstallation
from trame_bot.vault import new_key

ONE_TEAM = "T0TEAM"
"""The team id signed requests carry in one-workspace mode (the server ignores it there)."""
CLICK_CONCURRENCY = 50
REFERENCE_STALL_S = 30.0
"""Row 3c stops waiting this long after the load ended and the last update arrived."""
CARDS_WAITING = "SELECT count(*) FROM outbox WHERE kind = 'slack.card' AND state = 'pending'"
CLIENT_ID, CLIENT_SECRET = "1111.2222", "bench-client-secret-0000"


@dataclass(frozen=True)
class Place:
    """A workspace as Slack requests reach it: its channel, its team, its people."""

    key: str
    channel: str
    team: str
    owner: str
    member: str
    reviewers: tuple[str, ...]


@dataclass(frozen=True)
class Arranged:
    status: list[Place]
    """Where `/trame status` requests go, in turn (workflows `wf-0`…`wf-4` in each)."""
    lanes: list[tuple[Place, str]]
    """Per pause lane: the workspace and the workflow it pauses and resumes."""
    clicks: list[tuple[Place, str]]
    """Per pending run: its workspace and the run's id."""


@dataclass(frozen=True)
class Mode:
    name: str
    suffix: str
    """Appended to the row names: "" (one workspace) or "-d" (distributed)."""
    key: str | None = None
    """TRAME_ENCRYPTION_KEY, in distributed mode."""

    @property
    def distributed(self) -> bool:
        return self.key is not None

    def settings(self, database_url: str) -> Settings:
        url = async_database_url(database_url)
        if self.key is None:
            return Settings(database_url=url)
        return Settings(
            database_url=url,
            slack_client_id=CLIENT_ID,
            slack_client_secret=CLIENT_SECRET,
            slack_signing_secret=SIGNING_SECRET,
            encryption_keys=(self.key,),
            public_url="https://bench.example.com",
        )

    def server_env(self, database_url: str, fake: Child) -> dict[str, str]:
        env = child_env(database_url, fake.url + "api/")
        if self.key is not None:
            del env["SLACK_BOT_TOKEN"]
            env |= {
                "SLACK_CLIENT_ID": CLIENT_ID,
                "SLACK_CLIENT_SECRET": CLIENT_SECRET,
                "TRAME_ENCRYPTION_KEY": self.key,
                "PUBLIC_URL": "https://bench.example.com",
            }
        return env


async def run(target: Target) -> list[Result]:
    """The fake Slack and the bare app serve both modes; the bare app never reads the
    database nor calls Slack (its listeners only ack)."""
    results: list[Result] = []
    async with (
        started("fake", target.workdir, child_env()) as fake,
        started("bare", target.workdir, child_env(None, fake.url + "api/")) as bare,
    ):
        for mode in (Mode("one workspace", ""), Mode("distributed", "-d", new_key())):
            results += await _run_mode(target, mode, fake, bare)
    return results


async def _run_mode(target: Target, mode: Mode, fake: Child, bare: Child) -> list[Result]:
    sizes = target.sizes
    phase = Phases("slack")
    database = await target.fresh_database("slack-d" if mode.distributed else "slack")
    deps = build(mode.settings(database))
    try:
        if mode.distributed:
            arranged = await _arrange_teams(deps, sizes, fake)
        else:
            arranged = await _arrange_one(deps, sizes)
        async with (
            _trame(target, mode.server_env(database, fake)) as trame,
            _reference(target, mode, database, fake) as reference,
        ):
            posting = await _cards_posted(deps, len(arranged.clicks))
            phase(f"{mode.name}: arranged, servers up, cards posted")
            results = await _status(target, arranged, trame, bare, fake, reference)
            phase(f"{mode.name}: status")
            results += await _pause_resume(deps, sizes, arranged, trame, bare, fake, reference)
            phase(f"{mode.name}: pause|resume")
            results += await _approvals(deps, arranged, trame, bare, fake, posting, reference)
            phase(f"{mode.name}: approvals")
            errors = trame.logged_errors()
    finally:
        await deps.close()
    outbox = "own process" if target.outbox_process else "in the server"
    return [
        replace(
            r,
            row=r.row + mode.suffix,
            what=f"{r.what} [{mode.name}]" if mode.distributed else r.what,
            details={
                **r.details,
                "slack_mode": mode.name,
                "outbox": outbox,
                "server_errors_logged": errors,
            },
        )
        for r in results
    ]


@asynccontextmanager
async def _reference(
    target: Target, mode: Mode, database: str, fake: Child
) -> AsyncIterator[Child]:
    """The issue's nearest design (`bench.servers.reference_app`) on the same database, in the
    same Slack mode: what a Bolt app doing only a command's database work reaches (in
    distributed mode, with each request's team authorized from its installation)."""
    async with started("reference", target.workdir, mode.server_env(database, fake)) as app:
        yield app


@asynccontextmanager
async def _trame(target: Target, env: dict[str, str]) -> AsyncIterator[Child]:
    """The server under test: one process, or with `outbox_process` the web process and the
    outbox worker beside it (counted as the server's helper)."""
    workdir, profile = target.workdir, target.profile_dir
    if not target.outbox_process:
        async with started("trame", workdir, env, profile_dir=profile) as trame:
            yield trame
        return
    async with (
        started("outbox", workdir, env, profile_dir=profile) as outbox,
        started("trame-web", workdir, env, profile_dir=profile) as trame,
    ):
        trame.helpers["server_outbox"] = outbox.process.pid
        yield trame


async def _arrange_one(deps: Deps, sizes: Sizes) -> Arranged:
    """One Slack, three workspaces: one to read, one to pause and resume, one full of pending
    runs."""
    status, pause, click = (
        Place(key, channel, ONE_TEAM, OWNER, MEMBER, REVIEWERS)
        for key, channel in (("acme", "C0ACME"), ("initech", "C0INITECH"), ("globex", "C0GLOBEX"))
    )
    await _status_workspace(deps, status)
    await workspace(deps, pause.key, pause.channel)
    lanes = [(pause, f"lane-{lane:03d}") for lane in range(sizes.pause_lanes)]
    for lane, (_, wf) in enumerate(lanes):
        await workflow(deps, pause.key, wf, live=lane % 2 == 0)
    await workspace(deps, click.key, click.channel)
    await workflow(deps, click.key, "approvals")
    clicks = [
        (click, await _request(deps, click.key, "approvals", MEMBER))
        for _ in range(sizes.pending_runs)
    ]
    return Arranged([status], lanes, clicks)


async def _arrange_teams(deps: Deps, sizes: Sizes, fake: Child) -> Arranged:
    """`sizes.teams` Slack teams, each installed (its token sealed as an install stores it) and
    bound to one workspace holding what the three workspaces of one-workspace mode hold: the
    five workflows `/trame status` reads, its share of the pause lanes, and its share of the
    pending runs. The fake Slack learns each team's token, channels and users."""
    places = []
    for n in range(sizes.teams):
        team = f"T0B{n:03d}"
        people = f"U0B{n:03d}"
        place = Place(
            f"team-{n:03d}",
            f"C0B{n:03d}",
            team,
            f"{people}O",
            f"{people}M",
            tuple(f"{people}R{k}" for k in range(2)),
        )
        await _status_workspace(deps, place, reviewers=())
        await workspaces.set_role(deps.ctx, place.key, place.owner, Role.OWNER, CLI)
        for user in (place.member, *place.reviewers):
            await workspaces.set_role(deps.ctx, place.key, user, Role.MEMBER, CLI)
        await workflow(deps, place.key, "approvals")
        await _install(deps, place, _team_token(n))
        places.append(place)
    lanes = []
    for lane in range(sizes.pause_lanes):
        place, wf = places[lane % len(places)], f"lane-{lane:03d}"
        await workflow(deps, place.key, wf, live=lane % 2 == 0)
        lanes.append((place, wf))
    clicks = []
    for n in range(sizes.pending_runs):
        place = places[n % len(places)]
        clicks.append((place, await _request(deps, place.key, "approvals", place.member)))
    teams = [
        {
            "team": p.team,
            "name": p.key.title(),
            "token": _team_token(n),
            "channels": [p.channel, f"{p.channel}OPS"],
            "users": [p.owner, p.member, *p.reviewers],
        }
        for n, p in enumerate(places)
    ]
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.url + "bench/teams", json=teams) as answer,
    ):
        answer.raise_for_status()
    return Arranged(places, lanes, clicks)


def _team_token(n: int) -> str:
    return f"xoxb-{n + 1000}-{n + 2000}-bench{n:03d}"


async def _install(deps: Deps, place: Place, token: str) -> None:
    """The team's installation as `installations.complete_install` stores it (token sealed),
    and the workspace bound to the team, without the OAuth pages (as tests/factories.py)."""
    vault = deps.ctx.vault
    assert vault is not None
    async with deps.db.transaction() as session:
        ws = await workspace_store.get(session, place.key)
        row = await installation_store.for_team(session, place.team) or SlackInstallation(
            team_id=place.team
        )
        row.team_name = place.key.title()
        row.bot_token = vault.seal(token)
        row.bot_user_id, row.bot_id = f"U{place.team[1:]}BOT", f"B{place.team[1:]}BOT"
        row.installed_by = place.owner
        row.installed_at = datetime.now(UTC)
        session.add(row)
        ws.slack_team_id = place.team


async def _status_workspace(deps: Deps, place: Place, reviewers: Sequence[str] = REVIEWERS) -> None:
    await workspace(deps, place.key, place.channel, reviewers=reviewers)
    for n in range(5):
        await workflow(deps, place.key, f"wf-{n}")
    for _ in range(5):
        await _request(deps, place.key, "wf-0", MEMBER)


async def _request(deps: Deps, ws: str, wf: str, user: str) -> str:
    doc = RunRequestDoc(requested_by=user)
    return (await run_requests.request_run(deps.ctx, ws, wf, doc, Actor.api("engine"))).run.id


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


def _spec(
    server: Child,
    fake: Child,
    requests: list[Load],
    concurrency: int,
    warm: Place,
    *,
    postgres: str | None,
) -> Load:
    warmup = [
        {"command": "help", "user": warm.member, "channel": warm.channel, "team": warm.team}
        for _ in range(2 * concurrency)
    ]
    return {
        "url": server.url + "slack/events",
        "signing_secret": SIGNING_SECRET,
        "fake_url": fake.url,
        "concurrency": concurrency,
        "requests": requests,
        "warmup": warmup,
        "server_pid": server.process.pid,
        "watch": {"fake_slack": fake.process.pid, **server.helpers},
        "postgres": postgres,
    }


async def _status(
    target: Target,
    arranged: Arranged,
    trame: Child,
    bare: Child,
    fake: Child,
    reference: Child,
) -> list[Result]:
    sizes, places = target.sizes, arranged.status
    requests: list[Load] = []
    for n in range(sizes.status_requests):
        place = places[n % len(places)]
        requests.append(
            {
                "command": f"status wf-{n // len(places) % 5}",
                "user": place.member,
                "channel": place.channel,
                "team": place.team,
            }
        )
    # The row 1: PostgreSQL's round trips cost more than SQLite's in-process calls, but
    # its writers do not queue on one lock, so each database has its own bar.
    postgres = database_name(target.postgres_url)
    minimum = 0.7 if postgres else 0.6
    results = []
    for concurrency, row, floor in ((10, "1a", minimum), (50, "1c", 0.5)):
        subject, baseline = await alternate(
            sizes.repeats,
            subject=_spec(trame, fake, requests, concurrency, places[0], postgres=postgres),
            baseline=_spec(bare, fake, requests, concurrency, places[0], postgres=postgres),
        )
        details = load_details(subject, baseline)
        rate = at_least(
            row,
            f"/trame status acks/s, {concurrency} concurrent",
            subject["rps"],
            "req/s",
            baseline["rps"],
            "bare Bolt acks/s",
            floor,
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
                    30,
                    baseline=baseline["p99_ms"],
                    baseline_what="bare Bolt p99 ms",
                    p50_ms=round(subject["p50_ms"], 2),
                    baseline_p50_ms=round(baseline["p50_ms"], 2),
                )
            )
            cpu = at_most_times(
                "1e",
                "server CPU per /trame status, 10 concurrent",
                subject["server_cpu_ms_per_request"],
                "ms",
                baseline["server_cpu_ms_per_request"],
                "bare Bolt CPU ms per ack",
                3,
                server_cpu_share=round(subject["server_cpu_share"], 2),
                baseline_server_cpu_share=round(baseline["server_cpu_share"], 2),
            )
        else:
            results.append(_slowest("1d", "/trame status", subject, baseline, concurrency))
            results.append(
                await _referenced(
                    "1f",
                    f"/trame status acks/s, {concurrency} concurrent",
                    _spec(reference, fake, requests, concurrency, places[0], postgres=postgres),
                    _spec(bare, fake, requests, concurrency, places[0], postgres=postgres),
                    sizes.repeats,
                )
            )
    return [*results, cpu]


async def _referenced(row: str, what: str, spec: Load, bare: Load, repeats: int) -> Result:
    """The nearest design's figure for a row (no target): its rate against the bare app's,
    and its CPU per request, in the same run."""
    reference, baseline = await alternate(repeats, subject=spec, baseline=bare)
    return measured(
        row,
        f"{what}: the nearest design (bare Bolt + the command's SQLAlchemy Core work)",
        reference["rps"],
        "req/s",
        baseline["rps"],
        "bare Bolt acks/s",
        all_ok=all_ok(reference),
        **load_details(reference, baseline),
    )


def _slowest(row: str, what: str, subject: Load, baseline: Load, concurrency: int) -> Result:
    return at_most(
        row,
        f"slowest {what} ack, {concurrency} concurrent",
        subject["max_ms"],
        "ms",
        1000,
        baseline=baseline["max_ms"],
        baseline_what="bare Bolt slowest ack ms",
        p99_ms=round(subject["p99_ms"], 2),
    )


async def _pause_resume(
    deps: Deps,
    sizes: Sizes,
    arranged: Arranged,
    trame: Child,
    bare: Child,
    fake: Child,
    reference: Child,
) -> list[Result]:
    requests: list[Load] = []
    for lane, (place, wf) in enumerate(arranged.lanes):
        for _ in range(sizes.pause_rounds):
            for command in (f"pause {wf} bench load", f"resume {wf}"):
                requests.append(
                    {
                        "command": command,
                        "user": place.owner,
                        "channel": place.channel,
                        "team": place.team,
                        "lane": lane,
                    }
                )
    changes = "SELECT count(*) FROM audit_events WHERE action = 'workflow.status_changed'"
    posts = "SELECT count(*) FROM outbox WHERE kind = 'slack.post'"
    changes_before, posts_before = await scalar(deps, changes), await scalar(deps, posts)
    concurrency = len(arranged.lanes)
    warm = arranged.lanes[0][0]
    postgres = database_name(deps.settings.database_url)
    subject, baseline = await alternate(
        sizes.repeats,
        subject=_spec(trame, fake, requests, concurrency, warm, postgres=postgres),
        baseline=_spec(bare, fake, requests, concurrency, warm, postgres=postgres),
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
        f"/trame pause|resume acks/s, {concurrency} concurrent",
        subject["rps"],
        "req/s",
        baseline["rps"],
        "bare Bolt acks/s",
        0.2,
        **details,
    )
    every_write = written == expected and queued == expected and all_ok(subject)
    results = [
        replace(rate, met=rate.met and every_write),
        _slowest("2b", "pause|resume", subject, baseline, concurrency),
    ]
    results.append(
        await _referenced(
            "2c",
            f"/trame pause|resume acks/s, {concurrency} concurrent",
            _spec(reference, fake, requests, concurrency, warm, postgres=postgres),
            _spec(bare, fake, requests, concurrency, warm, postgres=postgres),
            sizes.repeats,
        )
    )
    return results


async def _approvals(
    deps: Deps,
    arranged: Arranged,
    trame: Child,
    bare: Child,
    fake: Child,
    posting: dict[str, float],
    reference: Child,
) -> list[Result]:
    """Every pending run gets one Approve click; the figure is clicks whose card update reached
    Slack per second, from the first click until the last card update was delivered. Then
    the same clicks on the nearest design, measured the same way (row 3c)."""
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
            "user": place.reviewers[n % len(place.reviewers)],
            "channel": place.channel,
            "team": place.team,
            "ts": cards[run_id],
        }
        for n, (place, run_id) in enumerate(arranged.clicks)
    ]
    count = len(requests)
    warm = arranged.clicks[0][0]
    postgres = database_name(deps.settings.database_url)
    baseline = await loadgen.run(
        _spec(bare, fake, requests, CLICK_CONCURRENCY, warm, postgres=postgres)
    )
    stats_before = await fake_stats(fake)
    updates_before = await _updates(fake)
    keys = sorted({place.key for place, _ in arranged.clicks})
    async with deps.db.reading() as session:
        ws_ids = [(await workspace_store.get(session, key)).id for key in keys]
    # The clicks' CPU is counted until the last card update reached Slack, deliveries included.
    processes = {"server": trame.process.pid, "fake_slack": fake.process.pid, **trame.helpers}
    meter = Meter(processes, postgres=postgres)
    meter.start()
    load = asyncio.create_task(
        loadgen.run(_spec(trame, fake, requests, CLICK_CONCURRENCY, warm, postgres=postgres))
    )

    async def delivered() -> bool:
        # Approve commits before it acks: once every click is answered, what is left is the
        # card updates in the outbox.
        return load.done() and await scalar(deps, CARDS_WAITING) == 0

    done = await wait_for(delivered, within=300 + count / 5)
    delivered_at = time.time()
    spent = meter.stop()
    subject = await load
    per_click = per_request(spent, count) | {"loadgen": subject["cpu_ms_per_request"]["loadgen"]}

    async def drained() -> bool:
        return await scalar(deps, "SELECT count(*) FROM outbox WHERE state = 'pending'") == 0

    await wait_for(drained, within=120)
    drained_at = time.time()
    start = subject["started_at"]
    rate = count / (delivered_at - start) if done else 0.0
    details = {
        **load_details(subject, baseline),
        "acks_per_s": round(subject["rps"], 1),
        "seconds_to_last_card_update": round(delivered_at - start, 2),
        "seconds_to_outbox_drained": round(drained_at - start, 2),
        **posting,
        "cpu_ms_per_click_to_last_update": per_click,
        **machine_ceiling(per_click, baseline["cpu_ms_per_request"]["server"], baseline["rps"]),
    }
    result = at_least(
        "3a",
        f"Approve clicks on {count} pending runs, card updated, per s",
        rate,
        "clicks/s",
        baseline["rps"],
        "bare Bolt acks/s",
        0.25,
        **details,
    )
    updated = _difference(await _updates(fake), updates_before)
    clicked = {f"{place.channel} {cards[run_id]}" for place, run_id in arranged.clicks}
    stats = _difference(await fake_stats(fake), stats_before)
    results = [result, await _decided_once(deps, ws_ids, count, stats, updated, clicked)]
    spec = _spec(reference, fake, requests, CLICK_CONCURRENCY, warm, postgres=postgres)
    results.append(await _referenced_clicks(spec, fake, baseline))
    return results


async def _referenced_clicks(spec: Load, fake: Child, baseline: Load) -> Result:
    """Row 3c: the clicks of 3a on the nearest design, counted as 3a counts them (until the
    last message update reached Slack), against 3a's bare app run."""
    count = len(spec["requests"])
    updates_before = (await fake_stats(fake)).get("chat.update ok", 0)
    load = asyncio.create_task(loadgen.run(spec))

    # The nearest design retries nothing: a click whose write fails (likely SQLite's busy
    # timeout under 50 writers) never updates its message, so the wait ends when updates
    # stop arriving.
    progress = {"arrived": 0, "at": time.time()}

    async def finished() -> bool:
        arrived = (await fake_stats(fake)).get("chat.update ok", 0) - updates_before
        if arrived != progress["arrived"]:
            progress.update(arrived=arrived, at=time.time())
        stalled = load.done() and time.time() - progress["at"] > REFERENCE_STALL_S
        return (load.done() and arrived >= count) or stalled

    await wait_for(finished, within=300 + count / 5, every=0.1)
    done = progress["arrived"] >= count
    updated_at = time.time()
    subject = await load
    seconds = updated_at - subject["started_at"]
    return measured(
        "3c",
        f"Approve clicks on {count} pending runs, message updated, per s: the nearest design "
        "(bare Bolt + a Core write, the thread reply, the DM and one chat.update)",
        count / seconds if done else 0.0,
        "clicks/s",
        baseline["rps"],
        "bare Bolt acks/s",
        all_ok=all_ok(subject),
        every_update_arrived=done,
        updates_arrived=int(progress["arrived"]),
        seconds_to_last_update=round(seconds, 2),
        **load_details(subject, baseline),
    )


async def _updates(fake: Child) -> dict[str, int]:
    async with aiohttp.ClientSession() as session, session.get(fake.url + "bench/updates") as r:
        return dict(await r.json())


def _difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


async def _decided_once(
    deps: Deps,
    ws_ids: Sequence[int],
    count: int,
    stats: dict[str, int],
    updated: dict[str, int],
    clicked: set[str],
) -> Result:
    """Every clicked run approved once (one decision, one audit event) and its card updated
    exactly once: no card missed, none updated twice, no other message touched."""
    in_ws = "(" + ", ".join(str(int(i)) for i in ws_ids) + ")"
    approved = await scalar(
        deps, f"SELECT count(*) FROM runs WHERE workspace_id IN {in_ws} AND state = 'approved'"
    )
    decisions = await scalar(
        deps,
        "SELECT count(*) FROM decisions d JOIN runs r ON r.id = d.run_id "
        f"WHERE r.workspace_id IN {in_ws}",
    )
    decided_runs = await scalar(
        deps,
        "SELECT count(DISTINCT d.run_id) FROM decisions d JOIN runs r ON r.id = d.run_id "
        f"WHERE r.workspace_id IN {in_ws}",
    )
    audited = await scalar(
        deps,
        "SELECT count(*) FROM audit_events "
        f"WHERE workspace_id IN {in_ws} AND action = 'run.approved'",
    )
    audited_runs = await scalar(
        deps,
        "SELECT count(DISTINCT entity_id) FROM audit_events "
        f"WHERE workspace_id IN {in_ws} AND action = 'run.approved'",
    )
    refused = {k: v for k, v in stats.items() if not k.endswith(" ok")}
    doubled = sum(1 for n in updated.values() if n > 1)
    missed = len(clicked - set(updated))
    others = len(set(updated) - clicked)
    ok = (
        approved == decisions == decided_runs == audited == audited_runs == count
        and missed == doubled == others == 0
        and not refused
    )
    return check(
        "3b",
        "every run decided once, its card updated once",
        ok,
        runs=count,
        approved=approved,
        decisions=decisions,
        runs_with_a_decision=decided_runs,
        approved_audit_events=audited,
        card_updates=sum(updated.values()),
        cards_updated=len(set(updated) & clicked),
        cards_not_updated=missed,
        cards_updated_twice_or_more=doubled,
        other_messages_updated=others,
        slack_calls=stats,
        slack_refusals=refused,
    )

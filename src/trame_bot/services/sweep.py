"""The connector health sweep: probe health URLs, flag expiring credentials and silent
connectors, and record each transition once, whichever scheduler process sees it first.

Connectors that are not healthy are probed first: their health URLs are the likeliest to hang
again, and a probe that hangs ends only at the probe timeout, so the sooner it starts the
sooner the sweep can end. A probe not answered by the soft deadline gives its slot back and
goes on waiting (`probe_slots`): hung URLs neither throttle the others nor end any sooner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.actors import Actor
from trame_bot.domain.health import Finding, Report, after_report, assess
from trame_bot.probes import Probe
from trame_bot.services.connectors import record_health
from trame_bot.services.context import Context
from trame_bot.services.probe_slots import ProbeSlots
from trame_bot.store import connectors as store
from trame_bot.store import workflows as workflow_store
from trame_bot.store.models import Workflow, Workspace

log = logging.getLogger(__name__)
CHUNK = 500
CLAIMS_AHEAD = 4
TRANSITIONS_PER_TRANSACTION = 10


@dataclass(frozen=True)
class SweepSettings:
    expiry_window: timedelta = timedelta(days=3)
    stale_after: timedelta = timedelta(hours=24)
    concurrency: int = 100
    """Probes expected to answer soon, at once."""
    soft_deadline: timedelta = timedelta(seconds=1)
    """A probe not answered by then gives its slot back and goes on waiting, up to the probe
    timeout. A healthy health URL answers in tens to hundreds of milliseconds, so one still
    silent after a second is likely hung; one merely slow costs room under `max_open_probes`,
    not a wrong result."""
    max_open_probes: int = 500
    """Probes open at once, those past their soft deadline included: the sockets a sweep holds
    (the probe session's connection limit is the same, see `probes.probe_session`). Below the
    usual limit of 1,024 open files; with a 10 s timeout it lets 50 hung URLs a second start."""
    probe_lease: timedelta = timedelta(minutes=2)
    """Longer than the claims ahead of the probes take to start: CLAIMS_AHEAD chunks. Even if
    every URL hangs, `max_open_probes` ÷ probe timeout of them start a second: 50 with the
    default 10 s, so the 2,500 claimed ahead start within 50 s. (A much longer timeout and a
    mass outage can outlast a lease: another process may then probe a connector again, and
    its transition is still recorded once.)"""


@dataclass
class SweepResult:
    probed: int = 0
    transitions: int = 0
    skipped: int = 0
    """Connectors another process was probing."""
    slow: int = 0
    """Probes still unanswered at the soft deadline (they gave their slot back)."""
    most_open: int = 0
    """Probes open at once at the busiest moment."""
    findings: dict[str, int] = field(default_factory=dict)


async def sweep(
    ctx: Context, probe: Probe, settings: SweepSettings = SweepSettings()
) -> SweepResult:
    result = SweepResult()
    # A connector another sweep checked after this one began is not probed again: two sweeps
    # at once probe each connector once, even when one finishes before the other claims.
    began = ctx.clock.now()
    async with ctx.db.reading() as session:
        targets = await store.sweep_targets(session)
    recording = asyncio.Lock()
    silent: list[tuple[int, Finding | None]] = [(cid, None) for cid, url in targets if not url]
    await _record(ctx, silent, settings, result, recording)
    with_url = [(cid, url) for cid, url in targets if url]
    chunks = [with_url[start : start + CHUNK] for start in range(0, len(with_url), CHUNK)]
    # One set of slots across the whole sweep: a chunk still waiting on a health URL that
    # never answers (up to the probe timeout) does not hold back the next chunks' probes,
    # which take the free slots at once. Each chunk's findings are recorded as soon as its own
    # probes are done.
    slots = ProbeSlots(
        settings.concurrency, settings.max_open_probes, settings.soft_deadline.total_seconds()
    )
    # Leases are claimed by a task of their own, up to CLAIMS_AHEAD chunks before their probes
    # start: a claim that waits for the database (SQLite's writer turn, taken by a chunk's
    # findings being recorded) never leaves a slot idle, and no lease is taken long before
    # its probe.
    claimed: asyncio.Queue[tuple[list[tuple[int, str]], set[int]] | None]
    claimed = asyncio.Queue(maxsize=CLAIMS_AHEAD)

    async def claim_all() -> None:
        for chunk in chunks:
            await claimed.put((chunk, await _claim(ctx, chunk, began, settings, result)))
        await claimed.put(None)

    async with asyncio.TaskGroup() as group:
        group.create_task(claim_all())
        while (next_chunk := await claimed.get()) is not None:
            chunk, leases = next_chunk
            await _start_probes(
                ctx, probe, chunk, leases, settings, result, slots, group, recording
            ).wait()
    result.slow, result.most_open = slots.slow, slots.most_open
    return result


async def _claim(
    ctx: Context,
    chunk: Sequence[tuple[int, str]],
    began: datetime,
    settings: SweepSettings,
    result: SweepResult,
) -> set[int]:
    """Take the probe leases of those connectors no other process is probing."""
    async with ctx.db.transaction() as session:
        claimed = set(
            await store.claim_probes(
                session, [cid for cid, _ in chunk], ctx.clock.now(), settings.probe_lease, began
            )
        )
    result.skipped += len(chunk) - len(claimed)
    return claimed


def _start_probes(
    ctx: Context,
    probe: Probe,
    chunk: Sequence[tuple[int, str]],
    leases: set[int],
    settings: SweepSettings,
    result: SweepResult,
    slots: ProbeSlots,
    group: asyncio.TaskGroup,
    recording: asyncio.Lock,
) -> asyncio.Event:
    """Start a probe task per leased connector of the chunk, each waiting for a slot, and a task
    that records their findings once they are all in; returns an event set when every probe
    of the chunk has its slot."""
    targets = [(cid, url) for cid, url in chunk if cid in leases]
    waiting = len(targets)
    all_started = asyncio.Event()
    if not targets:
        all_started.set()

    async def one(connector_id: int, url: str) -> tuple[int, Finding]:
        nonlocal waiting
        async with slots.held():
            waiting -= 1
            if waiting == 0:
                all_started.set()
            return connector_id, await probe(url)

    probes = [group.create_task(one(cid, url)) for cid, url in targets]

    async def record() -> None:
        findings: list[tuple[int, Finding | None]] = [await task for task in probes]
        result.probed += len(findings)
        await _record(ctx, findings, settings, result, recording, probed=True)

    group.create_task(record())
    return all_started


async def _record(
    ctx: Context,
    findings: list[tuple[int, Finding | None]],
    settings: SweepSettings,
    result: SweepResult,
    turn: asyncio.Lock,
    *,
    probed: bool = False,
) -> None:
    """Apply findings by chunk: the probe round recorded in one statement, then the changed
    connectors only."""
    now = ctx.clock.now()
    for start in range(0, len(findings), CHUNK):
        part = dict(findings[start : start + CHUNK])
        async with ctx.db.reading() as session:
            current = {s.id: s for s in await store.sweep_states(session, list(part))}
        verdicts = {
            cid: verdict
            for cid, found in part.items()
            if cid in current
            and (verdict := _verdict(now, current[cid], found, settings)) is not None
            and _would_change(current[cid], verdict)
        }
        if probed:
            async with turn, ctx.db.transaction() as session:
                await store.probed(session, list(part), now)
        # Transitions in short transactions, one chunk's at a time (`turn`): on SQLite each
        # holds the one writer's turn, and a lease claim queued behind many of them would
        # leave the probe slots idle.
        changed = list(verdicts.items())
        for first in range(0, len(changed), TRANSITIONS_PER_TRANSACTION):
            async with turn, ctx.db.transaction() as session:
                batch = dict(changed[first : first + TRANSITIONS_PER_TRANSACTION])
                await _transitions(session, ctx, batch, result)


async def _transitions(
    session: AsyncSession, ctx: Context, verdicts: dict[int, Finding], result: SweepResult
) -> None:
    """Record each verdict on its locked (re-read) connector: a change another process
    recorded meanwhile is not recorded twice. Each workspace and its workflows are read once."""
    workspaces: dict[int, tuple[Workspace, Sequence[Workflow]]] = {}
    for connector in await store.locked(session, list(verdicts)):
        verdict = verdicts[connector.id]
        if connector.workspace_id not in workspaces:
            workspace = await session.get(Workspace, connector.workspace_id)
            assert workspace is not None
            workflows = await workflow_store.list_for(session, workspace.id)
            workspaces[workspace.id] = (workspace, workflows)
        workspace, workflows = workspaces[connector.workspace_id]
        if await record_health(
            session,
            ctx,
            workspace,
            connector,
            verdict.report,
            verdict.error,
            Actor.system(),
            workflows=workflows,
        ):
            result.transitions += 1
            result.findings[verdict.report.value] = result.findings.get(verdict.report.value, 0) + 1


def _verdict(
    now: datetime, connector: store.SweepState, probe: Finding | None, settings: SweepSettings
) -> Finding | None:
    seen = [t for t in (connector.last_reported_at, connector.last_checked_at) if t is not None]
    return assess(
        now,
        probe=probe,
        expires_at=connector.expires_at,
        last_seen=max(seen) if seen else None,
        expiry_window=settings.expiry_window,
        stale_after=settings.stale_after,
    )


def _would_change(connector: store.SweepState, finding: Finding) -> bool:
    """A new health, or a new reason for the same bad health (kept current, not re-alerted)."""
    return after_report(connector.health, finding.report) is not connector.health or (
        finding.report is not Report.OK and connector.last_error != finding.error
    )

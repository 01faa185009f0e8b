"""The connector health sweep: probe health URLs, flag expiring credentials and silent
connectors, and record each transition once, whichever scheduler process sees it first."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from trame_bot.domain.actors import Actor
from trame_bot.domain.health import Finding, Report, after_report, assess
from trame_bot.probes import Probe
from trame_bot.services.connectors import record_health
from trame_bot.services.context import Context
from trame_bot.store import connectors as store
from trame_bot.store.models import Connector, Workspace

log = logging.getLogger(__name__)
CHUNK = 500


@dataclass(frozen=True)
class SweepSettings:
    expiry_window: timedelta = timedelta(days=3)
    stale_after: timedelta = timedelta(hours=24)
    concurrency: int = 100
    probe_lease: timedelta = timedelta(minutes=2)


@dataclass
class SweepResult:
    probed: int = 0
    transitions: int = 0
    skipped: int = 0
    """Connectors another process was probing."""
    findings: dict[str, int] = field(default_factory=dict)


async def sweep(
    ctx: Context, probe: Probe, settings: SweepSettings = SweepSettings()
) -> SweepResult:
    result = SweepResult()
    # A connector another sweep checked after this one began is not probed again: two sweeps
    # at once probe each connector once, even when one finishes before the other claims.
    began = ctx.clock.now()
    async with ctx.db.reading() as session:
        connectors = list(await store.all_for_sweep(session))
    silent = [c for c in connectors if not c.health_url]
    await _record(ctx, [(c.id, None) for c in silent], settings, result, probed=False)
    with_url = [c for c in connectors if c.health_url]
    chunks = [with_url[start : start + CHUNK] for start in range(0, len(with_url), CHUNK)]
    # One window of `concurrency` probes across the whole sweep: a chunk still waiting on a
    # health URL that never answers (up to the probe timeout) does not hold back the next
    # chunks' probes, which take the free slots at once. Each chunk's findings are recorded as
    # soon as its own probes are done.
    slots = asyncio.Semaphore(settings.concurrency)
    async with asyncio.TaskGroup() as group:
        leases = await _claim(ctx, chunks[0], began, settings, result) if chunks else set()
        for n, chunk in enumerate(chunks):
            started = _start_probes(ctx, probe, chunk, leases, settings, result, slots, group)
            # The next chunk's leases are taken while this one's probes wait for their slots,
            # so that no slot waits for a lease, and no lease is taken long before its probe.
            next_chunk = chunks[n + 1] if n + 1 < len(chunks) else []
            leases = await _claim(ctx, next_chunk, began, settings, result) if next_chunk else set()
            await started.wait()
    return result


async def _claim(
    ctx: Context,
    chunk: Sequence[Connector],
    began: datetime,
    settings: SweepSettings,
    result: SweepResult,
) -> set[int]:
    """Take the probe leases of those connectors no other process is probing."""
    async with ctx.db.transaction() as session:
        claimed = set(
            await store.claim_probes(
                session, [c.id for c in chunk], ctx.clock.now(), settings.probe_lease, began
            )
        )
    result.skipped += len(chunk) - len(claimed)
    return claimed


def _start_probes(
    ctx: Context,
    probe: Probe,
    chunk: Sequence[Connector],
    leases: set[int],
    settings: SweepSettings,
    result: SweepResult,
    slots: asyncio.Semaphore,
    group: asyncio.TaskGroup,
) -> asyncio.Event:
    """Start a probe task per leased connector of the chunk, each waiting for a slot, and a task
    that records their findings once they are all in; returns an event set when every probe
    of the chunk has its slot."""
    targets = [c for c in chunk if c.id in leases]
    waiting = len(targets)
    all_started = asyncio.Event()
    if not targets:
        all_started.set()

    async def one(connector: Connector) -> tuple[int, Finding]:
        nonlocal waiting
        async with slots:
            waiting -= 1
            if waiting == 0:
                all_started.set()
            assert connector.health_url is not None
            return connector.id, await probe(connector.health_url)

    probes = [group.create_task(one(c)) for c in targets]

    async def record() -> None:
        findings: list[tuple[int, Finding | None]] = [await task for task in probes]
        result.probed += len(findings)
        await _record(ctx, findings, settings, result, probed=True)

    group.create_task(record())
    return all_started


async def _record(
    ctx: Context,
    findings: list[tuple[int, Finding | None]],
    settings: SweepSettings,
    result: SweepResult,
    *,
    probed: bool,
) -> None:
    """Apply findings in one transaction per chunk; only changed connectors are touched."""
    now = ctx.clock.now()
    for start in range(0, len(findings), CHUNK):
        part = dict(findings[start : start + CHUNK])
        async with ctx.db.reading() as session:
            current = {c.id: c for c in await store.all_by_ids(session, list(part))}
        verdicts = {
            cid: verdict
            for cid, found in part.items()
            if cid in current
            and (verdict := _verdict(now, current[cid], found, settings)) is not None
            and _would_change(current[cid], verdict)
        }
        if not verdicts and not probed:
            continue
        async with ctx.db.transaction() as session:
            if probed:
                await store.probed(session, list(part), now)
            workspaces: dict[int, Workspace] = {}
            for connector in await store.locked(session, list(verdicts)):
                verdict = verdicts[connector.id]
                workspace = workspaces.get(connector.workspace_id) or await session.get(
                    Workspace, connector.workspace_id
                )
                assert workspace is not None
                workspaces[workspace.id] = workspace
                if await record_health(
                    session,
                    ctx,
                    workspace,
                    connector,
                    verdict.report,
                    verdict.error,
                    Actor.system(),
                ):
                    result.transitions += 1
                    result.findings[verdict.report.value] = (
                        result.findings.get(verdict.report.value, 0) + 1
                    )


def _verdict(
    now: datetime, connector: Connector, probe: Finding | None, settings: SweepSettings
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


def _would_change(connector: Connector, finding: Finding) -> bool:
    """A new health, or a new reason for the same bad health (kept current, not re-alerted)."""
    return after_report(connector.health, finding.report) is not connector.health or (
        finding.report is not Report.OK and connector.last_error != finding.error
    )

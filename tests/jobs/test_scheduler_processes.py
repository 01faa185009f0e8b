"""Two `trame-bot scheduler` processes on one database: every effect happens once."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests import factories as f
from tests.reliability.processes import trame_bot
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.services import audit, workspaces
from trame_bot.store.models import AuditEvent, Digest, OutboxMessage


async def effects(deps: Deps) -> tuple[Counter[str], int, int]:
    async with deps.db.reading() as session:
        actions = Counter((await session.execute(select(AuditEvent.action))).scalars())
        digests = len((await session.execute(select(Digest))).scalars().all())
        reminders = sum(
            1
            for m in (await session.execute(select(OutboxMessage))).scalars()
            if m.payload.get("event") == "run.reminder"
        )
    return actions, digests, reminders


async def test_two_scheduler_processes_make_each_effect_once(
    deps: Deps, clock: FakeClock, database_url: str
) -> None:
    now = datetime.now(UTC)  # the processes run on the real clock
    clock.set(now - timedelta(days=2))
    await f.governed_workspace(deps)
    await workspaces.configure_workspace(
        deps.ctx, "acme", workspaces.WorkspaceSettings(digest_time="00:00"), Actor.cli()
    )
    await f.connector(deps, "acme", "gone", expires_at=now - timedelta(hours=1))
    await f.workflow(deps)
    await f.request(deps)  # two days old: past its 24 h TTL
    clock.set(now - timedelta(hours=5))
    await f.request(deps)  # five hours old: due a reminder, not expired
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    processes = [await trame_bot("scheduler", "--sweep-every", "1s", env=env) for _ in range(2)]
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            actions, digests, reminders = await effects(deps)
            if (
                digests
                and reminders
                and actions["run.expired"]
                and actions["connector.health_changed"] >= 3
            ):
                break
            assert asyncio.get_running_loop().time() < deadline, (actions, digests, reminders)
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # let both processes run their jobs a few more times
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        outputs = [await asyncio.wait_for(p.communicate(), timeout=20) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    actions, digests, reminders = await effects(deps)
    assert (digests, actions["digest.sent"], reminders, actions["run.expired"]) == (1, 1, 1, 1)
    async with deps.db.reading() as session:
        changed = Counter(
            (
                await session.execute(
                    select(AuditEvent.entity_id).where(
                        AuditEvent.action == "connector.health_changed"
                    )
                )
            ).scalars()
        )
    assert changed == {"crm": 1, "sheets": 1, "gone": 1}, (
        "silent crm/sheets and expired gone, once each"
    )
    assert (await audit.verify_chain(deps.ctx, "acme")).ok

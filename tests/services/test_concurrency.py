"""Exactly one outcome under concurrency, and a chain that stays valid."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import func, select

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, RunState, Verdict
from trame_bot.errors import Conflict
from trame_bot.services import audit, decisions, runs, workspaces
from trame_bot.services.context import Context
from trame_bot.store import audit as audit_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.database import Database
from trame_bot.store.models import AuditEvent, Decision

REVIEWERS = [f"U0REV{i:03d}" for i in range(20)]


async def test_twenty_reviewers_approving_and_declining_at_once_settle_once(deps: Deps) -> None:
    members = [(user, Role.MEMBER) for user in REVIEWERS] + [(f.OWNER, Role.OWNER)]
    await f.workspace(deps, members=members)
    await f.connector(deps, "acme", "crm")
    await f.connector(deps, "acme", "sheets", scopes=["write"])
    await f.workflow(deps, required_approvals=3)
    rng = random.Random(7)
    for round_ in range(3):
        run = await f.request(deps, by=f.OWNER, idempotency_key=f"round-{round_}")
        verdicts = [Verdict.DECLINE if rng.random() < 0.2 else Verdict.APPROVE for _ in REVIEWERS]

        async def vote(user: str, verdict: Verdict, run_id: str = run.id) -> bool:
            try:
                decided = await decisions.decide(
                    deps.ctx,
                    run_id,
                    Actor.slack(user),
                    verdict,
                    reason="not now" if verdict is Verdict.DECLINE else None,
                )
            except Conflict:
                return False
            return decided.final

        finals = await asyncio.gather(
            *(vote(u, v) for u, v in zip(REVIEWERS, verdicts, strict=True))
        )
        assert sum(finals) == 1, "exactly one decision settles the run"
        found, recorded = await runs.get_run(deps.ctx, "acme", run.id)
        assert found.state in (RunState.APPROVED, RunState.DECLINED)
        approvals = [d for d in recorded if d.verdict is Verdict.APPROVE]
        declines = [d for d in recorded if d.verdict is Verdict.DECLINE]
        if found.state is RunState.APPROVED:
            assert (len(approvals), len(declines)) == (3, 0)
            assert found.approvals == 3
        else:
            assert len(declines) == 1
            assert len(approvals) < 3
        async with deps.db.reading() as session:
            decision_events = await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.entity_id == run.id, AuditEvent.action != "run.requested")
            )
            decision_rows = await session.scalar(
                select(func.count()).select_from(Decision).where(Decision.run_id == run.id)
            )
        assert decision_events == decision_rows == len(recorded)
    report = await audit.verify_chain(deps.ctx, "acme")
    assert report.ok, report.problem


async def test_concurrent_appends_from_two_connections_keep_the_chain_valid(deps: Deps) -> None:
    await f.workspace(deps)
    other = Database(deps.db.url)
    try:

        async def append_many(db: Database, name: str) -> None:
            for i in range(40):
                async with db.transaction() as session:
                    ws = await workspace_store.get(session, "acme")
                    await audit_store.append(
                        session,
                        ws,
                        at=deps.clock.now(),
                        actor=f"cli:{name}",
                        action="test.appended",
                        entity_type="workspace",
                        entity_id="acme",
                        summary=f"{name} #{i}",
                    )

        await asyncio.gather(
            append_many(deps.db, "a"), append_many(other, "b"), append_many(deps.db, "c")
        )
    finally:
        await other.dispose()
    report = await audit.verify_chain(deps.ctx, "acme")
    assert report.ok, report.problem
    assert report.checked == 1 + 4 + 120  # created, 4 members, appends


async def test_two_owners_demoting_each_other_at_once_keep_an_owner(deps: Deps) -> None:
    await f.workspace(deps, members=[("U0A", Role.OWNER), ("U0B", Role.OWNER)])
    ctx2 = Context(Database(deps.db.url), deps.clock)
    try:
        results = await asyncio.gather(
            workspaces.set_role(deps.ctx, "acme", "U0A", Role.ADMIN, Actor.slack("U0B")),
            workspaces.set_role(ctx2, "acme", "U0B", Role.ADMIN, Actor.slack("U0A")),
            return_exceptions=True,
        )
    finally:
        await ctx2.db.dispose()
    assert sum(isinstance(r, Exception) for r in results) == 1
    owners = [m for m in await workspaces.list_members(deps.ctx, "acme") if m.role is Role.OWNER]
    assert len(owners) == 1

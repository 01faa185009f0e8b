"""Faults: Slack failing through a burst of decisions, the database going away, and the server
killed mid-load. Nothing lost, nothing doubled, the outbox drains, the chain verifies."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from tests import factories as f
from tests.harness import Bot, eventually
from tests.reliability.processes import DatabaseProxy, ServerProcess
from trame_bot.bootstrap import Deps, build_web_app
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, RunState
from trame_bot.errors import Unavailable
from trame_bot.services import audit, workspaces
from trame_bot.slack.ids import Action
from trame_bot.store import outbox
from trame_bot.store.database import Database
from trame_bot.store.models import Decision, OutboxMessage

REVIEWERS = [f"U0REV{i:02d}" for i in range(40)]


async def crowd(bot: Bot) -> str:
    members = [(u, Role.MEMBER) for u in REVIEWERS] + [
        (f.OWNER, Role.OWNER),
        (f.MEMBER, Role.MEMBER),
    ]
    ws = await f.workspace(bot.deps, members=members)
    await f.connector(bot.deps, "acme", "crm")
    await f.connector(bot.deps, "acme", "sheets")
    await f.workflow(bot.deps)
    return ws.approvals_channel


async def drained(bot: Bot, *, push_clock: bool = True) -> None:
    """Wait for an empty outbox, moving the outbox's clock past its backoffs."""

    async def empty() -> bool:
        if push_clock:
            bot.deps.clock.advance(timedelta(seconds=60))  # type: ignore[attr-defined]
        async with bot.deps.db.reading() as session:
            count, _ = await outbox.backlog(session)
            failed = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.state == "failed")
            )
        assert failed == 0, "nothing given up"
        return count == 0

    await eventually(empty, within=30)


async def test_slack_429_500_and_timeouts_through_a_burst_of_decisions(bot: Bot) -> None:
    channel = await crowd(bot)
    runs = [await f.request(bot.deps, by=f.MEMBER) for _ in range(30)]
    await bot.delivered()
    bot.fake.fail_next(None, status=429, retry_after=1, count=6)
    bot.fake.fail_next("chat.update", status=500, count=8)
    bot.fake.hang_next("chat.postMessage", seconds=3, count=2)
    answers = await asyncio.gather(
        *(
            bot.click(Action.APPROVE, run.id, user=REVIEWERS[i], channel=channel)
            for i, run in enumerate(runs)
        )
    )
    assert {a.status for a in answers} == {200}
    await drained(bot)
    for run in runs:
        assert await bot.state_of(run.id) is RunState.APPROVED
        card = bot.fake.message(channel, (await bot_run_ts(bot, run.id)))
        assert card is not None
        assert "Approved" in card.text, "every card ends up updated"
    async with bot.deps.db.reading() as session:
        assert await session.scalar(select(func.count()).select_from(Decision)) == 30
    assert sum(1 for c in bot.fake.calls if not c.ok) >= 10, "the faults really happened"
    assert (await audit.verify_chain(bot.deps.ctx, "acme")).ok


async def bot_run_ts(bot: Bot, run_id: str) -> str:
    from trame_bot.services import cards

    card = await cards.run_card(bot.deps.ctx, run_id)
    assert card.slack_ts is not None
    return card.slack_ts


@asynccontextmanager
async def outage_server(bot: Bot, database_url: str) -> AsyncIterator[tuple[str, object]]:
    """A server whose database can be taken away: behind a TCP proxy on PostgreSQL; on SQLite,
    by another connection holding the write lock longer than the server will wait."""
    if database_url.startswith("postgresql"):
        proxy = DatabaseProxy()
        await proxy.start()
        db = Database(database_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"))
        control: object = proxy
    else:
        proxy = None
        db = Database(database_url, busy_timeout_ms=200)
        control = database_url.split("///", 1)[1]
    deps = Deps(replace(bot.deps.settings, slack_api_url=bot.fake_url + "api/"), db, bot.deps.clock)
    server = TestServer(build_web_app(deps), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), control
    finally:
        await server.close()
        await db.dispose()
        if proxy is not None:
            await proxy.close()


@asynccontextmanager
async def database_down(control: object) -> AsyncIterator[None]:
    if isinstance(control, DatabaseProxy):
        control.cut()
        try:
            yield
        finally:
            control.restore()
        return
    # Another process's write lock; taken off the event loop, whose own transactions must finish.
    holder = sqlite3.connect(
        str(control), timeout=10, isolation_level=None, check_same_thread=False
    )
    await asyncio.to_thread(holder.execute, "BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@asynccontextmanager
async def proxied_database(
    database_url: str, *, ping_idle_after: float = 30.0
) -> AsyncIterator[tuple[DatabaseProxy, Callable[[], Awaitable[object]]]]:
    """A `Database` reaching PostgreSQL through a proxy, and a one-statement transaction."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a SQLite file has no connection to drop")
    proxy = DatabaseProxy()
    await proxy.start()
    db = Database(
        database_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"),
        ping_idle_after=ping_idle_after,
    )

    async def transaction() -> object:
        async with db.transaction() as session:
            return await session.scalar(select(func.count()).select_from(OutboxMessage))

    try:
        yield proxy, transaction
    finally:
        await db.dispose()
        await proxy.close()


async def test_a_transaction_after_the_server_closed_its_pooled_connection(
    database_url: str,
) -> None:
    """A connection in steady use is not pinged on checkout: one whose socket the server
    ended is replaced there, so the transaction that draws it never sees it."""
    async with proxied_database(database_url) as (proxy, transaction):
        await transaction()  # the pool now holds one connection, taken again by the next one
        proxy.cut()
        proxy.restore()
        await asyncio.sleep(0.05)  # the socket's end reaches the driver
        await transaction()


async def test_a_connection_dropped_silently_while_idle(database_url: str) -> None:
    """A connection idle past `ping_idle_after` is pinged on checkout, so one that a NAT or a
    firewall dropped without telling it is replaced unseen. Without the ping (a connection
    in steady use), the transaction that draws it fails as `Unavailable`; the next one goes
    through on a new connection."""
    for ping_idle_after, seen in ((0.0, False), (3600.0, True)):
        async with proxied_database(database_url, ping_idle_after=ping_idle_after) as (
            proxy,
            transaction,
        ):
            await transaction()
            proxy.forget()
            await asyncio.sleep(0.05)
            if seen:
                with pytest.raises(Unavailable):
                    await transaction()
            else:
                await transaction()
            await transaction()


async def test_requests_after_the_database_dropped_its_connections(
    bot: Bot, database_url: str
) -> None:
    """Connections in steady use are checked out without a ping
    (`store.database._check_on_checkout`): the ones the database dropped since their last
    use are replaced, unseen, for a read (`/trame status`), a command's transaction
    (`/trame pause`, `/trame resume`) and an API run request."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a SQLite file has no connection to drop")
    channel = await crowd(bot)
    _, token = await workspaces.create_api_key(bot.deps.ctx, "acme", "engine", Actor.cli())
    run_url = "/api/v1/workflows/invoice-sync/runs"
    async with outage_server(bot, database_url) as (base, control), aiohttp.ClientSession() as http:
        assert isinstance(control, DatabaseProxy)

        async def command(words: str, said: str) -> None:
            request = bot.slack.command(words, user=f.OWNER, channel=channel)
            async with http.post(
                base + "/slack/events", data=request.body, headers=request.headers
            ) as r:
                assert r.status == 200
                text = await r.text()
            assert said in text, text
            assert "unavailable" not in text, text

        async def run_requested() -> None:
            headers = {"Authorization": f"Bearer {token}"}
            async with http.post(base + run_url, json={}, headers=headers) as r:
                assert r.status < 300, await r.text()

        await run_requested()
        await command("pause invoice-sync maintenance", "is paused")
        control.cut()  # every open connection goes, as when the server restarts
        control.restore()
        await asyncio.sleep(0.05)  # the sockets' end reaches the driver
        await command("status invoice-sync", "Invoice sync")
        await command("resume invoice-sync", "*Invoice sync* is")
        control.cut()
        control.restore()
        await asyncio.sleep(0.05)
        await run_requested()


async def test_the_database_going_away_for_a_while(bot: Bot, database_url: str) -> None:
    channel = await crowd(bot)
    run = await f.request(bot.deps, by=f.MEMBER)
    _, token = await workspaces.create_api_key(bot.deps.ctx, "acme", "engine", Actor.cli())
    headers = {"Authorization": f"Bearer {token}"}
    async with outage_server(bot, database_url) as (base, control), aiohttp.ClientSession() as http:
        post_url = base + "/slack/events"
        async with database_down(control):
            async with http.post(
                base + "/api/v1/workflows/invoice-sync/runs", json={}, headers=headers
            ) as r:
                assert r.status == 503
                assert r.headers["Retry-After"] == "5"
                assert (await r.json())["error"] == "unavailable"
            if isinstance(control, DatabaseProxy):
                async with http.get(base + "/readyz") as r:
                    assert r.status == 503
            command = bot.slack.command(
                "pause invoice-sync db test", user=f.MEMBER, channel=channel
            )
            async with http.post(post_url, data=command.body, headers=command.headers) as r:
                assert r.status == 200
                assert "database is unavailable" in await r.text()
            if isinstance(control, DatabaseProxy):
                # Reads on SQLite go on past another process's write lock; on PostgreSQL the
                # glance's own pool (`store.direct`) meets the cut connection too.
                status = bot.slack.command("status invoice-sync", user=f.MEMBER, channel=channel)
                async with http.post(post_url, data=status.body, headers=status.headers) as r:
                    assert r.status == 200
                    assert "database is unavailable" in await r.text()
            click = bot.slack.block_action(
                user=REVIEWERS[0],
                action_id=Action.APPROVE.value,
                value=run.id,
                block_id="run_actions",
                channel=channel,
                message_ts="1.1",
            )
            async with http.post(post_url, data=click.body, headers=click.headers) as r:
                assert r.status == 200
            told = await bot.told(REVIEWERS[0])
            assert "database is unavailable" in told[0]
        assert await bot.state_of(run.id) is RunState.PENDING, "nothing half-written"
        async with http.get(base + "/readyz") as r:
            assert r.status == 200
        status = bot.slack.command("status invoice-sync", user=f.MEMBER, channel=channel)
        async with http.post(post_url, data=status.body, headers=status.headers) as r:
            assert r.status == 200
            assert "Invoice sync" in await r.text()
        async with http.post(post_url, data=click.body, headers=click.headers) as r:
            assert r.status == 200  # approve answers after it commits
        assert await bot.state_of(run.id) is RunState.APPROVED
        # A delivery caught by the outage holds its lease until it expires, then goes out.
        await drained(bot)
    assert (await audit.verify_chain(bot.deps.ctx, "acme")).ok


@pytest.mark.slow
async def test_sigkill_during_a_load_of_approvals_loses_and_doubles_nothing(
    bot: Bot, database_url: str
) -> None:
    channel = await crowd(bot)
    runs = [await f.request(bot.deps, by=f.MEMBER) for _ in range(120)]
    settings = replace(bot.deps.settings, slack_api_url=bot.fake_url + "api/")
    server = ServerProcess(settings, database_url)
    await server.start()
    clicks = [
        bot.slack.block_action(
            user=REVIEWERS[i % len(REVIEWERS)],
            action_id=Action.APPROVE.value,
            value=run.id,
            block_id="run_actions",
            channel=channel,
            message_ts="1.1",
        )
        for i, run in enumerate(runs)
    ]
    acknowledged: set[str] = set()
    async with aiohttp.ClientSession() as http:

        async def send(url: str, index: int) -> None:
            try:
                async with http.post(
                    url + "/slack/events", data=clicks[index].body, headers=clicks[index].headers
                ) as r:
                    if r.status == 200:
                        acknowledged.add(runs[index].id)
            except aiohttp.ClientError:
                pass  # the process died under this request: Slack shows the user an error

        load = [asyncio.create_task(send(server.url, i)) for i in range(len(runs))]
        await eventually(_count_at_least(bot, 20), within=20)
        await server.stop(signal.SIGKILL)
        await asyncio.gather(*load)
        assert acknowledged, "the load was under way"
        # Usually some clicks were in flight; on a fast run all may have landed before the
        # kill, and then it still hits the outbox mid-delivery.
        for run_id in acknowledged:
            assert await bot.state_of(run_id) is RunState.APPROVED, (
                "an acknowledged click is never lost"
            )
        restarted = ServerProcess(settings, database_url)
        await restarted.start()
        try:
            # People click again, and once more when told the database was busy (a loaded
            # machine can keep SQLite's write lock past the busy timeout).
            for _ in range(5):
                pending = [
                    i
                    for i, run in enumerate(runs)
                    if await bot.state_of(run.id) is RunState.PENDING
                ]
                if not pending:
                    break
                await asyncio.gather(*(send(restarted.url, i) for i in pending))
            # A delivery the killed process had claimed waits for its lease (60 s) to expire.
            await eventually(_outbox_empty(bot), within=90)
        finally:
            await restarted.stop()
    async with bot.deps.db.reading() as session:
        per_run = dict(
            (
                await session.execute(
                    select(Decision.run_id, func.count()).group_by(Decision.run_id)
                )
            ).all()
        )
    assert len(per_run) == len(runs)
    assert set(per_run.values()) == {1}, "no decision doubled"
    assert (await audit.verify_chain(bot.deps.ctx, "acme")).ok


def _count_at_least(bot: Bot, count: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        async with bot.deps.db.reading() as session:
            return (await session.scalar(select(func.count()).select_from(Decision)) or 0) >= count

    return check


def _outbox_empty(bot: Bot):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        async with bot.deps.db.reading() as session:
            count, _ = await outbox.backlog(session)
        return count == 0

    return check

"""Operations: /metrics, JSON logs, and a graceful SIGTERM that keeps the outbox."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from dataclasses import replace

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from tests import factories as f
from tests.harness import Bot, eventually
from tests.reliability.processes import ServerProcess, trame_bot
from trame_bot.config import Settings
from trame_bot.domain.enums import RunState
from trame_bot.slack.ids import Action
from trame_bot.store.models import OutboxMessage, Run


async def test_metrics_in_prometheus_text_format(bot: Bot) -> None:
    ws = await f.governed_workspace(bot.deps)
    await f.workflow(bot.deps)
    run = await f.request(bot.deps, by=f.MEMBER)
    await bot.delivered()
    await bot.click(Action.APPROVE, run.id, user=f.ADMIN, channel=ws.approvals_channel)
    await bot.command("status", user=f.MEMBER, channel=ws.approvals_channel)
    await f.request(bot.deps)
    async with bot.session.get(bot.url.removesuffix("/slack/events") + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    slack = (("method", "POST"), ("outcome", "2xx"), ("route", "/slack/events"))
    assert samples["trame_http_requests_total", slack] == 2
    assert families["trame_http_request_seconds"].type == "histogram"
    assert families["trame_slack_ack_seconds"].type == "histogram"
    assert samples["trame_slack_ack_seconds_bucket", (("le", "3.0"),)] == 2
    assert samples["trame_slack_ack_seconds_count", ()] == 2
    assert samples["trame_pending_runs", ()] == 1
    assert ("trame_outbox_backlog", ()) in samples
    assert ("trame_outbox_oldest_age_seconds", ()) in samples
    assert samples["trame_connectors_needing_attention", ()] == 0
    assert families["trame_job_runs"].type == "counter"  # the parser drops a counter's _total
    # The standard collectors: this process's CPU, memory and open files, and the platform.
    for name in (
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "process_open_fds",
        "python_info",
    ):
        assert name in families, sorted(families)
    assert samples["process_open_fds", ()] > 0


async def test_a_served_process_exposes_its_own_metrics(
    settings: Settings, database_url: str
) -> None:
    server = ServerProcess(settings, database_url)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "/healthz") as response:
                assert response.status == 200
            async with http.get(server.url + "/metrics") as response:
                assert response.status == 200
                text = await response.text()
    finally:
        await server.stop()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    healthz = [
        sample
        for sample in families["trame_http_requests"].samples
        if sample.name == "trame_http_requests_total" and sample.labels["route"] == "/healthz"
    ]
    assert healthz, text
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds"} <= set(
        families
    )
    assert {"trame_outbox_backlog", "trame_pending_runs", "trame_job_runs"} <= set(families)


async def test_json_logs() -> None:
    env = {
        **os.environ,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere",  # logs "unavailable"
    }
    process = await trame_bot("workspace", "list", env=env)
    _, stderr = await process.communicate()
    lines = [line for line in stderr.decode().splitlines() if line.startswith("{")]
    assert lines, stderr
    for line in lines:
        entry = json.loads(line)
        assert {"at", "level", "logger", "message"} <= set(entry)


async def test_sigterm_finishes_in_flight_requests_and_keeps_the_outbox(
    bot: Bot, database_url: str
) -> None:
    ws = await f.governed_workspace(bot.deps)
    await f.workflow(bot.deps)
    runs = [await f.request(bot.deps, by=f.MEMBER) for _ in range(20)]

    async def approved() -> int:
        async with bot.deps.db.reading() as session:
            found = await session.scalar(
                select(func.count()).select_from(Run).where(Run.state == RunState.APPROVED)
            )
        return int(found or 0)

    bot.fake.hang_next("chat.postMessage", seconds=1.5, count=50)  # deliveries are slow
    server = ServerProcess(
        replace(bot.deps.settings, slack_api_url=bot.fake_url + "api/"), database_url
    )
    await server.start()
    async with aiohttp.ClientSession() as http:
        clicks = [
            bot.slack.block_action(
                user=f.ADMIN,
                action_id=Action.APPROVE.value,
                value=run.id,
                block_id="run_actions",
                channel=ws.approvals_channel,
                message_ts="1.1",
            )
            for run in runs
        ]

        async def send(index: int) -> int:
            async with http.post(
                server.url + "/slack/events", data=clicks[index].body, headers=clicks[index].headers
            ) as r:
                return r.status

        in_flight = [asyncio.create_task(send(i)) for i in range(len(runs))]

        async def arrived() -> bool:
            # The server has taken clicks: the first decision committed, others in flight.
            return await approved() > 0

        await eventually(arrived, within=20)
        started = time.monotonic()
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        statuses = await asyncio.gather(*in_flight, return_exceptions=True)
        await server.stop(within=25)
        assert time.monotonic() - started < 25
    assert server.process.returncode == 0, server.log
    answered = [s for s in statuses if s == 200]
    assert answered, "requests that had arrived were finished"
    assert len(answered) == await approved(), "no click was decided and left unanswered"
    async with bot.deps.db.reading() as session:
        pending = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state == "pending")
        )
        failed = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state == "failed")
        )
    assert failed == 0
    assert pending, "what was not delivered yet is still there for the next process"

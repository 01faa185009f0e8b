"""Shared fixtures: a real database per test (SQLite file, or the PostgreSQL server when
TRAME_TEST_DATABASE_URL points at it), the real services, and a clock that moves by hand."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.harness import Bot
from trame_bot.bootstrap import Deps, build, build_web_app
from trame_bot.clock import FakeClock
from trame_bot.config import Settings, async_database_url
from trame_bot.sandbox.fake_slack import FakeSlack, RunningFake, serve
from trame_bot.sandbox.slack_requests import SlackRequests
from trame_bot.store.migrate import upgrade
from trame_bot.store.models import Base

PG_URL = os.environ.get("TRAME_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path | str:
    """Migrate once per session: a SQLite file to copy, or the PostgreSQL database itself."""
    if PG_URL:
        url = async_database_url(PG_URL)
        _reset_postgres(url)
        upgrade(url)
        return url
    template = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{template}")
    return template


def _reset_postgres(url: str) -> None:
    async def reset() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())


@pytest.fixture
def database_url(migrated_template: Path | str, tmp_path: Path) -> Iterator[str]:
    if isinstance(migrated_template, str):
        _truncate_postgres(migrated_template)
        yield migrated_template
        return
    path = tmp_path / "trame.db"
    shutil.copyfile(migrated_template, path)
    yield f"sqlite+aiosqlite:///{path}"


def _truncate_postgres(url: str) -> None:
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)

    async def truncate() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            # The audit table refuses TRUNCATE by trigger; a test reset is the one exception.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    asyncio.run(truncate())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        slack_bot_token="xoxb-test-token-SECRET-1234",
        slack_signing_secret="signing-secret-SECRET-5678",
        slack_timeout=2,  # fault tests make the fake Slack hang longer than this
    )


@pytest.fixture
async def deps(settings: Settings, clock: FakeClock) -> AsyncIterator[Deps]:
    deps = build(settings, clock=clock)
    yield deps
    await deps.close()


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture
async def slack_api(settings: Settings) -> AsyncIterator[RunningFake]:
    """Slack's Web API, faked on loopback."""
    running = await serve(FakeSlack(settings.slack_bot_token or ""))
    yield running
    await running.close()


@pytest.fixture
async def bot(deps: Deps, slack_api: RunningFake) -> AsyncIterator[Bot]:
    """The real server (Slack, API, outbox worker) on a loopback port, talking to the fake."""
    server_deps = Deps(replace(deps.settings, slack_api_url=slack_api.api_url), deps.db, deps.clock)
    server = TestServer(build_web_app(server_deps), host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    try:
        yield Bot(
            deps=server_deps,
            url=str(server.make_url("/slack/events")),
            session=session,
            slack=SlackRequests(deps.settings.slack_signing_secret or ""),
            fake=slack_api.fake,
            fake_url=slack_api.url,
            server=server,
        )
    finally:
        await session.close()
        await server.close()

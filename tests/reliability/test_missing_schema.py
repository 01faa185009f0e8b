"""A server whose database has no schema (it was never migrated, or lost its tables) tells
Slack users, API clients and the load balancer what is wrong, not "try again in a moment"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import factories as f
from tests.blank_database import blank_database
from tests.harness import Bot


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """This module's servers run on a database nobody migrated."""
    with blank_database(tmp_path) as url:
        yield url


@pytest.mark.parametrize("command", ["status", "status invoice-sync"])
async def test_slack_says_the_schema_is_missing_and_who_fixes_it(bot: Bot, command: str) -> None:
    # `status <workflow>` reads on the driver's own connection (`store.direct`), the rest
    # through sessions: both say the same.
    answer = await bot.command(command, user=f.MEMBER, channel="C0APPROVE")
    assert answer.status == 200
    assert "schema is missing or out of date" in answer.text
    assert "trame-bot db upgrade" in answer.text
    assert "try again" not in answer.text


async def test_the_api_and_readiness_say_it_too(bot: Bot) -> None:
    base = bot.url.removesuffix("/slack/events")
    headers = {"Authorization": "Bearer some-key"}
    async with bot.session.get(base + "/api/v1/workflows", headers=headers) as response:
        assert response.status == 503
        body = await response.json()
    assert body["error"] == "schema_not_ready"
    assert "trame-bot db upgrade" in body["message"]
    async with bot.session.get(base + "/readyz") as response:
        assert response.status == 503
        assert "trame-bot db upgrade" in (await response.json())["reason"]

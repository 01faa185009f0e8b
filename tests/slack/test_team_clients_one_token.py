"""One-workspace mode, when Slack refuses SLACK_BOT_TOKEN: every Slack message is held (never
failed, never counted), one ERROR line names the fix, and the token is tried again once per
interval rather than once per message."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests import factories as f
from tests.harness import Bot, eventually
from trame_bot.clock import FakeClock
from trame_bot.services.outbox import held_messages
from trame_bot.slack.team_clients import TOKEN_RETRY
from trame_bot.store.models import OutboxMessage


async def cards(bot: Bot) -> list[OutboxMessage]:
    async with bot.deps.db.reading() as session:
        found = await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))
        return list(found.scalars())


async def test_a_refused_token_holds_every_message_and_names_the_fix(
    bot: Bot, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await f.governed_workspace(bot.deps)
    await f.workflow(bot.deps)
    bot.fake.fail_next("chat.postMessage", error="invalid_auth")
    with caplog.at_level(logging.INFO, logger="trame_bot"):
        await f.request(bot.deps)

        async def held() -> bool:
            rows = await cards(bot)
            return bool(rows) and (rows[0].last_error or "").startswith("held: ")

        await eventually(held)
        for _ in range(3):  # more messages while the token is refused: no call to Slack
            await f.request(bot.deps)
        await eventually(lambda: _all_held(bot, 4))
    assert len(bot.fake.calls_to("chat.postMessage")) == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "Slack refused SLACK_BOT_TOKEN (invalid_auth): every Slack message is held until the "
        f"token works; replace SLACK_BOT_TOKEN and restart (tried again every {TOKEN_RETRY:.0f} s)"
    ]
    assert all(m.attempts == 0 and m.state == "pending" for m in await cards(bot))
    assert await held_messages(bot.deps.ctx, "acme") == 0, "no installation holds them"

    clock.advance(timedelta(seconds=TOKEN_RETRY + 1))  # the token works again (a restart)
    await bot.delivered()
    posts = bot.fake.calls_to("chat.postMessage")
    assert [c.ok for c in posts] == [False, True, True, True, True]
    assert all(m.state == "sent" and m.attempts == 1 for m in await cards(bot))


async def _all_held(bot: Bot, count: int) -> bool:
    rows = await cards(bot)
    return len(rows) == count and all((m.last_error or "").startswith("held: ") for m in rows)

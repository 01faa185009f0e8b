"""Slack tests share a governed workspace on top of the server fixtures of tests/conftest.py."""

from __future__ import annotations

import pytest

from tests import factories as f
from tests.harness import Bot


@pytest.fixture
async def acme(bot: Bot) -> str:
    """A governed workspace with a pilot workflow; returns its approvals channel."""
    ws = await f.governed_workspace(bot.deps)
    await f.workflow(bot.deps)
    return ws.approvals_channel

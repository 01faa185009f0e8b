"""One-workspace mode (SLACK_BOT_TOKEN) has no install pages: Bolt's OAuth paths are not there."""

from __future__ import annotations

from tests.harness import Bot


async def test_one_workspace_mode_has_no_install_pages(bot: Bot) -> None:
    for path in ("/slack/install?grant=x", "/slack/oauth_redirect?state=x&code=y"):
        async with bot.session.get(str(bot.server.make_url(path))) as response:
            assert response.status == 404

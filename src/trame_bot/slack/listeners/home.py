"""App Home: what waits for me, my workspaces' workflows and connectors."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from trame_bot.services import overview
from trame_bot.services.context import Context
from trame_bot.slack.blocks.home import MAX_WORKSPACES, home_view
from trame_bot.slack.team_scope import team_scope

log = logging.getLogger(__name__)


def register(app: AsyncApp, ctx: Context) -> None:
    @app.event("app_home_opened")
    async def home_opened(
        event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        # Publishing the same view twice is harmless, so Slack's retries need no dedupe here.
        if event.get("tab", "home") != "home":
            return
        user = str(event["user"])
        team = team_scope(ctx, context)
        theirs, total = await overview.homes_for(ctx, user, team_id=team, limit=MAX_WORKSPACES)
        view = home_view(await overview.waiting_for(ctx, user, team_id=team), theirs, total)
        await client.views_publish(user_id=user, view=view)

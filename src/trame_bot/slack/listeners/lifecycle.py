"""Slack telling us the app is gone from a team (distributed mode): the team's workspaces are
marked disconnected and their messages wait for a new install."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from trame_bot.services import installations
from trame_bot.services.context import Context


def register(app: AsyncApp, ctx: Context) -> None:
    # Both events are acked as soon as the listener returns; a retry of the same event_id
    # finds the team already disconnected and changes nothing (`disconnect` is once only).

    @app.event("app_uninstalled")
    async def uninstalled(context: AsyncBoltContext) -> None:
        if ctx.distributed and context.team_id:
            await installations.disconnect(ctx, context.team_id, "app_uninstalled")

    @app.event("tokens_revoked")
    async def revoked(event: dict[str, Any], context: AsyncBoltContext) -> None:
        # Only the bot token matters: a revoked user token (`tokens.oauth`) leaves the bot be.
        bots = (event.get("tokens") or {}).get("bot") or []
        if ctx.distributed and context.team_id and bots:
            await installations.disconnect(ctx, context.team_id, "tokens_revoked")

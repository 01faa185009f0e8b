"""Which Slack team's workspaces a request may reach (distributed mode keeps teams apart)."""

from __future__ import annotations

from slack_bolt.context.async_context import AsyncBoltContext

from trame_bot.services.context import Context


def team_scope(ctx: Context, context: AsyncBoltContext) -> str | None:
    """The team the app is installed in, as Bolt reads it from the request (`team.id`; in a
    shared channel that is the installed team, not the clicking user's own `user.team_id`, so
    a reviewer from another organisation can decide). "" when a request names no team: it
    reaches nothing. None in one-workspace mode: one token, one team, every workspace."""
    if not ctx.distributed:
        return None
    return context.team_id or ""

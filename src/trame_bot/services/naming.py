"""Which workflow a command's words name: the channel selects the workspace, the leading words
the workflow (by key or name, any case, the longest match), and the words after it are the
command's rest."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.values import match_workflow
from trame_bot.errors import ChannelNotBound, NotFound
from trame_bot.services.context import Context
from trame_bot.store import channel as channel_store
from trame_bot.store import workflows as workflow_store


@dataclass(frozen=True)
class Named:
    """A workflow named where a command was written: the channel's workspace (bound to the
    Slack `team` in distributed mode, any in one-workspace mode), the workflow the leading
    `words` name (key or name, any case, the longest match), the words after it its rest."""

    channel: str
    team: str | None
    words: tuple[str, ...]


async def named_in_channel(
    ctx: Context, named: Named, user: str
) -> tuple[str, str, tuple[str, ...]]:
    """The channel's workspace key, the key of the workflow `named` and the words after its
    name, in one statement on the driver."""
    async with ctx.db.lookups.connection() as lookup:
        scope, workflow, rest = await channel_store.channel_workflow(
            lookup, named.team, named.channel, user, named.words
        )
    if scope is None:
        raise ChannelNotBound(named.channel)
    if workflow is None:  # not an ASCII key or name: matched in Python
        async with ctx.db.lookup() as session:
            key, rest = await named_in(session, scope.workspace_id, named.words)
        return scope.workspace_key, key, rest
    return scope.workspace_key, workflow.key, rest


async def named_in(
    session: AsyncSession, workspace_id: int, words: tuple[str, ...]
) -> tuple[str, tuple[str, ...]]:
    found = match_workflow(words, await workflow_store.names(session, workspace_id))
    if found is None:
        shown = words[0] if words else ""
        raise NotFound(f"no workflow {shown!r} in this workspace (see `/trame workflows`)")
    return found

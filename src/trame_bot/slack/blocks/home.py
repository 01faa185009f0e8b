"""The App Home tab: waiting approvals first, then each workspace at a glance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from trame_bot.domain.values import counted
from trame_bot.domain.views import HomeSection, PendingView
from trame_bot.slack.blocks.replies import approvals_text, connectors_text, workflows_text
from trame_bot.slack.text import truncate

MAX_WORKSPACES = 15
"""6 blocks each + the header part stays under Slack's 100 blocks per view."""


def home_view(
    waiting: Sequence[PendingView], workspaces: Sequence[HomeSection], total: int | None = None
) -> dict[str, Any]:
    """What waits for the person, then their workspaces: the first `MAX_WORKSPACES` of
    `workspaces`, and a line for the rest of `total` (default: as many as given)."""
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=f"Waiting for your approval ({len(waiting)})")),
        SectionBlock(text=MarkdownTextObject(text=approvals_text(waiting))),
    ]
    if not workspaces:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(text="You are not a member of any trame-bot workspace yet.")
                ]
            )
        )
    for o in workspaces[:MAX_WORKSPACES]:
        blocks += [
            DividerBlock(),
            HeaderBlock(text=PlainTextObject(text=truncate(o.workspace_name, 150))),
            SectionBlock(text=MarkdownTextObject(text=workflows_text(o.listing))),
        ]
        if o.unhealthy:
            blocks.append(
                SectionBlock(
                    text=MarkdownTextObject(
                        text="*Connectors needing attention*\n" + connectors_text(o.unhealthy)
                    )
                )
            )
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"{o.pending_runs} pending · audit head `{o.audit_head[:12]}`"
                    )
                ]
            )
        )
    hidden = (len(workspaces) if total is None else total) - min(len(workspaces), MAX_WORKSPACES)
    if hidden > 0:
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=f"…and {counted(hidden, 'more workspace')}")]
            )
        )
    return View(type="home", blocks=blocks).to_dict()

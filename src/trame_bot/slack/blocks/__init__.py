"""Pure Block Kit builders: view objects in, `(text, blocks)` or view dicts out. No IO.

Builders use `slack_sdk.models`, whose `to_dict()` refuses what Slack would refuse, and
truncate long content to stay inside Slack's limits whatever the input.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block

Blocks = list[dict[str, Any]]
Message = tuple[str, Blocks]
"""A message: its notification/accessibility `text` and its blocks."""


def render(blocks: list[Block]) -> Blocks:
    return [block.to_dict() for block in blocks]

"""The daily connector-health digest, from the snapshot the digest service stored."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
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

from trame_bot.domain.values import counted
from trame_bot.slack.blocks import Message, render
from trame_bot.slack.text import code, escape, truncate, when

MAX_CONNECTOR_SECTIONS = 20
"""Connectors shown in full; the rest are summarised (a message holds 50 blocks)."""
MAX_OVER_PRIVILEGED_TEXT = 800
"""The over-privileged section's share of Slack's ~13k characters of block text."""


def digest_message(data: Mapping[str, Any]) -> Message:
    name = escape(truncate(str(data.get("workspace", "")), 100))
    unhealthy = list(data.get("unhealthy", []))
    total = int(data.get("unhealthy_total", len(unhealthy)))
    pending = list(data.get("pending", []))
    pending_total = int(data.get("pending_total", len(pending)))
    head = f"Audit chain: {counted(int(data.get('audit_events', 0)), 'event')}, head {code(str(data.get('audit_head', ''))[:12])}"
    title = (
        f"Connector health — {truncate(str(data.get('workspace', '')), 80)}, {data.get('date', '')}"
    )
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=truncate(title, 150)))]
    over_privileged = list(data.get("over_privileged", []))
    over_total = int(data.get("over_privileged_total", len(over_privileged)))
    if not total and not pending_total and not over_total:
        blocks += [
            SectionBlock(
                text=MarkdownTextObject(
                    text="✅ All clear: every connector is healthy and nothing waits for approval."
                )
            ),
            ContextBlock(elements=[MarkdownTextObject(text=head)]),
        ]
        return f"✅ All clear for {name}", render(blocks)
    if total:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"*{_needing_attention(total)}* — reconnect them in Trame → Settings → Connectors"
                )
            )
        )
        for connector in unhealthy[:MAX_CONNECTOR_SECTIONS]:
            blocks.append(SectionBlock(text=MarkdownTextObject(text=_connector(connector))))
        hidden = total - min(len(unhealthy), MAX_CONNECTOR_SECTIONS)
        if hidden > 0:
            rest = unhealthy[MAX_CONNECTOR_SECTIONS:]
            keys = ", ".join(code(str(c["key"])) for c in rest[:40])
            more = f" and {hidden - len(rest[:40])} more" if hidden > len(rest[:40]) else ""
            blocks.append(
                ContextBlock(
                    elements=[MarkdownTextObject(text=truncate(f"Also: {keys}{more}", 2900))]
                )
            )
    else:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="✅ Every connector is healthy.")))
    if over_total:
        text = _over_privileged(over_privileged, over_total)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=text)))
    blocks.append(DividerBlock())
    blocks.append(SectionBlock(text=MarkdownTextObject(text=_pending(pending, pending_total))))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=head)]))
    return (
        f"{_needing_attention(total)}, {counted(pending_total, 'approval')} pending in {name}",
        render(blocks),
    )


def _needing_attention(total: int) -> str:
    return f"{counted(total, 'connector')} {'needs' if total == 1 else 'need'} attention"


def _connector(c: Mapping[str, Any]) -> str:
    since = when(datetime.fromisoformat(str(c["since"])))
    line = f"⚠️ {code(str(c['key']))} ({escape(truncate(str(c.get('toolkit', '')), 60))}) {str(c['health']).replace('_', ' ')} since {since}"
    if c.get("error"):
        line += f"\n>{escape(truncate(str(c['error']), 300))}"
    by_status: dict[str, list[str]] = {}
    for workflow in c.get("workflows", []):
        by_status.setdefault(str(workflow["status"]), []).append(
            escape(truncate(str(workflow["name"]), 60))
        )
    for status in ("live", "pilot", "draft", "paused"):
        if status in by_status:
            line += f"\n{status.capitalize()}: {', '.join(by_status[status][:8])}"
    return truncate(line, 2900)


def _pending(pending: list[Mapping[str, Any]], total: int) -> str:
    if not total:
        return "Nothing waits for approval."
    lines = [f"*{counted(total, 'approval')} pending*"]
    for p in pending[:15]:
        lines.append(
            f"• {escape(truncate(str(p['workflow']), 80))}, requested {when(datetime.fromisoformat(str(p['requested_at'])))} in <#{p['channel']}>"
        )
    if total > 15:
        lines.append(f"_…and {total - 15} more_")
    return truncate("\n".join(lines), 2900)


def _over_privileged(connectors: list[Mapping[str, Any]], total: int) -> str:
    """Grants no workflow step needs (domain/scopes.py), in whole lines within
    `MAX_OVER_PRIVILEGED_TEXT`: the digest's other sections use most of the message."""
    lines = [f"*Over-privileged connectors ({total})* — grants no workflow step needs"]
    size = len(lines[0])
    for shown, c in enumerate(connectors):
        scopes = ", ".join(code(truncate(str(s), 30)) for s in c.get("scopes", [])[:3])
        line = f"• {code(truncate(str(c['key']), 40))}: {scopes}"
        if size + len(line) + 40 > MAX_OVER_PRIVILEGED_TEXT:
            lines.append(f"_…and {total - shown} more_")
            break
        lines.append(line)
        size += len(line) + 1
    else:
        if total > len(connectors):
            lines.append(f"_…and {total - len(connectors)} more_")
    return "\n".join(lines)

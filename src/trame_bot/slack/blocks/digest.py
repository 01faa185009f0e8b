"""The daily digest (connector health, waiting runs, declines, paused workflows), from the
snapshot the digest service stored."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
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
from trame_bot.slack.text import code, escape, truncate, user, when

MAX_CONNECTOR_SECTIONS = 20
"""Connectors shown in full; the rest are summarised (a message holds 50 blocks)."""
MAX_OVER_PRIVILEGED_TEXT = 800
"""The over-privileged section's share of Slack's ~13k characters of block text."""
MAX_WAITING_LINES = 10
MAX_WAITING_TEXT = 2000
MAX_DECLINED_TEXT = 2000
MAX_PAUSED_TEXT = 800
"""The approvals sections' shares of the ~13k characters; the connector sections get what the
other sections leave (`TEXT_BUDGET`), so the message is valid whatever the numbers."""
TEXT_BUDGET = 12_000
"""Below Slack's observed ~13k characters of block text (sandbox/block_kit.py), with room for
the header and the closing line."""


def digest_message(data: Mapping[str, Any]) -> Message:
    name = escape(truncate(str(data.get("workspace", "")), 100))
    unhealthy = list(data.get("unhealthy", []))
    total = int(data.get("unhealthy_total", len(unhealthy)))
    pending = list(data.get("pending", []))
    pending_total = int(data.get("pending_total", len(pending)))
    over_privileged = list(data.get("over_privileged", []))
    over_total = int(data.get("over_privileged_total", len(over_privileged)))
    declined = list(data.get("declined", []))
    declined_total = int(data.get("declined_total", len(declined)))
    paused = list(data.get("paused", []))
    paused_total = int(data.get("paused_total", len(paused)))
    now = datetime.fromisoformat(str(data["at"])) if data.get("at") else None
    head = f"Audit chain: {counted(int(data.get('audit_events', 0)), 'event')}, head {code(str(data.get('audit_head', ''))[:12])}"
    title = f"Daily digest — {truncate(str(data.get('workspace', '')), 80)}, {data.get('date', '')}"
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=truncate(title, 150)))]
    if not (total or pending_total or over_total or declined_total or paused_total):
        # Declines and paused workflows count: each is a decision somebody may want to revisit.
        blocks += [
            SectionBlock(
                text=MarkdownTextObject(
                    text="✅ All clear: every connector is healthy, nothing waits for approval, "
                    "nothing was declined and no workflow is paused."
                )
            ),
            ContextBlock(elements=[MarkdownTextObject(text=head)]),
        ]
        return f"✅ All clear for {name}", render(blocks)
    # The approvals sections first, so the connector sections know what is left of the budget.
    texts = [_pending(pending, pending_total, now)]
    if declined_total:
        texts.append(_declined(declined, declined_total, str(data.get("declined_since", ""))))
    if paused_total:
        texts.append(_paused(paused, paused_total, now))
    if over_total:
        texts.insert(0, _over_privileged(over_privileged, over_total))
    left = TEXT_BUDGET - sum(len(text) for text in texts) - len(head) - len(title)
    blocks += _connector_sections(unhealthy, total, left)
    if over_total:
        blocks.append(_section(texts.pop(0)))
    blocks.append(DividerBlock())
    blocks += [_section(text) for text in texts]
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=head)]))
    return (
        f"{_needing_attention(total)}, {counted(pending_total, 'approval')} pending in {name}",
        render(blocks),
    )


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text))


def _connector_sections(unhealthy: list[Mapping[str, Any]], total: int, budget: int) -> list[Block]:
    """Up to `MAX_CONNECTOR_SECTIONS` connectors in full while they fit `budget`, the rest
    named in one line."""
    if not total:
        return [_section("✅ Every connector is healthy.")]
    lead = f"*{_needing_attention(total)}* — reconnect them in Trame → Settings → Connectors"
    blocks: list[Block] = [_section(lead)]
    budget -= len(lead) + 600  # the "Also" line's floor
    shown = 0
    for connector in unhealthy[:MAX_CONNECTOR_SECTIONS]:
        text = _connector(connector)
        if len(text) > budget:
            break
        blocks.append(_section(text))
        budget -= len(text)
        shown += 1
    hidden = total - shown
    if hidden > 0:
        rest = unhealthy[shown:]
        keys = ", ".join(code(truncate(str(c["key"]), 60)) for c in rest[:40])
        more = f" and {hidden - len(rest[:40])} more" if hidden > len(rest[:40]) else ""
        limit = max(min(budget + 600, 2900), 100)
        also = f"Also: {keys}"
        if len(also) + len(more) > limit:
            also = truncate(also, limit - len(more) - 30)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"{also}{more}")]))
    return blocks


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


def _pending(pending: list[Mapping[str, Any]], total: int, now: datetime | None) -> str:
    """Waiting longest first, each linked to its card once the card is posted."""
    if not total:
        return "Nothing waits for approval."
    lines = [f"*{counted(total, 'approval')} pending* — waiting longest first"]
    items = []
    for p in pending[:MAX_WAITING_LINES]:
        requested = datetime.fromisoformat(str(p["requested_at"]))
        workflow = escape(truncate(str(p["workflow"]), 80))
        link = card_link(p.get("channel"), p.get("slack_ts"))
        line = f"• <{link}|{workflow}>" if link else f"• {workflow}"
        if p.get("requested_by"):
            line += f" for {user(truncate(str(p['requested_by']), 80))}"
        if now is not None:
            line += f", waiting {age(now - requested)}"
        else:
            line += f", requested {when(requested)}"
        if not link:
            line += f" in <#{p['channel']}> (card not posted yet)"
        items.append(line)
    return _bounded(lines, items, total, MAX_WAITING_TEXT)


def card_link(channel: object, ts: object) -> str | None:
    """A permalink to a posted card, built without an API call (Slack resolves it)."""
    if not channel or not ts:
        return None
    return f"https://slack.com/archives/{channel}/p{str(ts).replace('.', '')}"


def age(span: timedelta) -> str:
    """ "3d 4h", "5h 12m", "7m": how long, to the two largest units."""
    minutes = max(int(span.total_seconds()) // 60, 0)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {mins}m" if mins else f"{hours}h"
    return f"{mins}m"


def _declined(declined: list[Mapping[str, Any]], total: int, since: str) -> str:
    """Who declined what, why, in whole lines within `MAX_DECLINED_TEXT`."""
    start = when(datetime.fromisoformat(since)) if since else "the last digest"
    lines = [f"*{counted(total, 'run')} declined* since {start}"]
    return _bounded(lines, [_decline(d) for d in declined], total, MAX_DECLINED_TEXT)


def _decline(d: Mapping[str, Any]) -> str:
    line = f"• {escape(truncate(str(d['workflow']), 80))}"
    if d.get("requested_by"):
        line += f" for {user(truncate(str(d['requested_by']), 80))}"
    line += (
        f", declined by {user(truncate(str(d['declined_by']), 80))}"
        if d.get("declined_by")
        else ", declined"
    )
    if d.get("category"):
        line += f" ({code(truncate(str(d['category']), 32))})"
    if d.get("reason"):
        line += f": _{escape(truncate(' '.join(str(d['reason']).split()), 150))}_"
    return line


def _paused(paused: list[Mapping[str, Any]], total: int, now: datetime | None) -> str:
    """Paused longest first, in whole lines within `MAX_PAUSED_TEXT`."""
    lines = [f"*{counted(total, 'workflow')} paused*"]
    shown = []
    for p in paused:
        since = datetime.fromisoformat(str(p["since"]))
        name = f"{escape(truncate(str(p['name']), 60))} ({code(truncate(str(p['key']), 40))})"
        how_long = f"for {age(now - since)}" if now is not None else f"since {when(since)}"
        shown.append(f"• {name}, paused {how_long}")
    return _bounded(lines, shown, total, MAX_PAUSED_TEXT)


def _bounded(lines: list[str], items: list[str], total: int, budget: int) -> str:
    size = sum(len(line) + 1 for line in lines)
    for shown, line in enumerate(items):
        if size + len(line) + 40 > budget:
            lines.append(f"_…and {total - shown} more_")
            break
        lines.append(line)
        size += len(line) + 1
    else:
        if total > len(items):
            lines.append(f"_…and {total - len(items)} more_")
    return "\n".join(lines)


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

"""Replies to `/trame` commands: help, lists and summaries, as mrkdwn text."""

from __future__ import annotations

from collections.abc import Sequence

from trame_bot.domain.downtime import spoken
from trame_bot.domain.enums import DeclineCategory, Health, Status
from trame_bot.domain.pilot import PilotRecord
from trame_bot.domain.values import counted
from trame_bot.domain.views import (
    LINES_PER_STATUS,
    ConnectorLine,
    PendingView,
    Summary,
    WorkflowLine,
    WorkflowList,
)
from trame_bot.slack.blocks.notices import CATEGORY_LABELS
from trame_bot.slack.text import code, escape, truncate, user, when
from trame_bot.store.models import AuditEvent

REPLY_LIMIT = 3000
MAX_LINES = 25

HELP = "\n".join(
    [
        "*trame-bot* — approvals and governance for this channel's workspace",
        "`/trame status [workflow]` — the workspace or one workflow at a glance",
        "`/trame workflows` — workflows by status",
        "`/trame approvals` — runs waiting for your approval",
        "`/trame pause <workflow> <reason>` — stop a workflow (anyone may pull the brake)",
        "`/trame resume <workflow>` — back to the status it had (admin)",
        "`/trame rollback <workflow> [why]` — carry out its rollback plan (pause, or triggers off)",
        "`/trame promote <workflow> pilot|live` — live needs a client sign-off (admin)",
        "`/trame demote <workflow> draft|pilot`",
        "`/trame trigger <workflow> <trigger> on|off` — enabling needs an admin",
        "`/trame connectors` — connector health",
        "`/trame audit [workflow:<key>|connector:<key>|run:<id>] [since] [until]` — owners and admins",
        "`/trame audit export [filters]` — the audit log as a CSV file in this channel",
        "`/trame report <workflow:KEY|connector:KEY> [since] [until]` — the incident report for "
        "the client (PDF, and the export that proves it) in this channel; owners and admins",
        "`/trame role @user owner|admin|member|remove`",
        "`/trame digest` — post the daily digest now (admin)",
        "Workflows are named by key or name, any case; quote names with spaces in them.",
    ]
)

STATUS_ORDER = (Status.LIVE, Status.PILOT, Status.DRAFT, Status.PAUSED)
HEALTH_ICON = {Health.OK: "🟢", Health.NEEDS_ATTENTION: "🟠", Health.DISCONNECTED: "🔴"}


def _lines(lines: Sequence[str], empty: str, limit: int = REPLY_LIMIT) -> str:
    """Whole lines only (a cut line could leave half a `<…>` token), then how many are left."""
    if not lines:
        return empty
    shown: list[str] = []
    size = 0
    for line in lines[:MAX_LINES]:
        line = truncate(line, 500)
        if size + len(line) + 1 > limit - 40:
            break
        shown.append(line)
        size += len(line) + 1
    if len(shown) < len(lines):
        shown.append(f"_…and {len(lines) - len(shown)} more_")
    return "\n".join(shown)


def help_text(note: str | None = None) -> str:
    return f"{note}\n\n{HELP}" if note else HELP


def workflow_line(w: WorkflowLine) -> str:
    extra = []
    if w.pending_runs:
        extra.append(f"{w.pending_runs} pending")
    if w.unhealthy_connectors:
        extra.append("⚠️ " + ", ".join(code(c) for c in w.unhealthy_connectors[:5]))
    off = [k for k, enabled in w.triggers if not enabled]
    if off:
        extra.append("triggers off: " + ", ".join(code(k) for k in off[:5]))
    tail = f" — {'; '.join(extra)}" if extra else ""
    prod = " · production" if w.production else ""
    return f"• *{escape(truncate(w.name, 80))}* {code(w.key)} v{w.version}{prod}{tail}"


def workflows_text(listing: WorkflowList) -> str:
    sections = []
    for status in STATUS_ORDER:
        count = listing.counts.get(status, 0)
        if count:
            group = [workflow_line(w) for w in listing.lines if w.status is status]
            sections.append(
                f"*{status.value.capitalize()}* ({count})\n" + "\n".join(group[:LINES_PER_STATUS])
            )
    return truncate("\n\n".join(sections), REPLY_LIMIT) if sections else "No workflows yet."


def overview_text(s: Summary) -> str:
    counts = ", ".join(f"{s.workflows.get(status, 0)} {status.value}" for status in STATUS_ORDER)
    lines = [
        f"*{escape(truncate(s.workspace_name, 100))}* — workflows: {counts}",
        f"Pending approvals: {s.pending_runs}",
        f"Connectors needing attention: {len(s.unhealthy)}"
        + (": " + ", ".join(code(key) for key in s.unhealthy[:10]) if s.unhealthy else ""),
    ]
    if s.failed_deliveries:
        lines.append(
            f"⚠️ {counted(s.failed_deliveries, 'notification')} could not be delivered (see `trame-bot audit list`)"
        )
    lines.append(f"Audit chain: {counted(s.audit_events, 'event')}, head {code(s.audit_head[:12])}")
    return "\n".join(lines)


def workflow_status_text(w: WorkflowLine, pending: Sequence[PendingView]) -> str:
    lines = [workflow_line(w), f"Status: *{w.status.value}*"]
    for key, enabled in w.triggers:
        lines.append(f"Trigger {code(key)}: {'on' if enabled else 'off'}")
    for p in pending[:10]:
        lines.append(
            f"Pending run requested by {user(p.requested_by)} {when(p.requested_at)} — "
            f"{p.approvals} of {counted(p.required_approvals, 'approval')}"
        )
    if w.pilot is not None:
        lines.extend(pilot_lines(w.pilot))
    return truncate("\n".join(lines), REPLY_LIMIT)


def pilot_lines(record: PilotRecord, declines: int = 3) -> list[str]:
    """The pilot's record as `/trame status` and the go-live form show it: counts, the latest
    `declines` declines with their reasons, each connector's health over the pilot."""
    runs = ", ".join(
        f"{count} {word}"
        for count, word in (
            (record.approved, "approved"),
            (len(record.declined), "declined"),
            (record.expired, "expired"),
            (record.pending, "pending"),
            (record.cancelled, "cancelled"),
            (record.refused, "refused by the gate"),
        )
        if count or word in ("approved", "declined")
    )
    lines = [
        f"*Pilot record* since version {record.version} was saved {when(record.since)}:",
        f"• Runs of this plan: {runs}",
    ]
    for d in record.declined[:declines]:
        label = _category(d.category)
        lines.append(
            f"• Declined {when(d.at)} by {user(d.by)}"
            + (f" ({escape(label)})" if label else "")
            + (f": “{escape(truncate(d.reason, 200))}”" if d.reason else "")
        )
    if len(record.declined) > declines:
        lines.append(f"• … and {counted(len(record.declined) - declines, 'earlier decline')}")
    for c in record.connectors:
        state = f"{HEALTH_ICON[c.health]} {c.health.value.replace('_', ' ')} now"
        if not c.unhealthy:
            history = "healthy throughout the pilot"
        else:
            history = (
                f"unhealthy for {spoken(c.unhealthy_for)} during the pilot "
                f"({counted(len(c.unhealthy), 'stretch', 'stretches')})"
            )
        lines.append(f"• Connector {code(c.key)}: {state}, {history}")
    return lines


def _category(category: str | None) -> str | None:
    if not category:
        return None
    try:
        return CATEGORY_LABELS[DeclineCategory(category)]
    except ValueError:  # a category this version does not know: shown as recorded
        return category


def approvals_text(pending: Sequence[PendingView], limit: int = REPLY_LIMIT) -> str:
    return _lines(
        [
            f"• *{escape(truncate(p.workflow_name, 80))}* requested by {user(p.requested_by)} "
            f"{when(p.requested_at)} — {p.approvals} of {counted(p.required_approvals, 'approval')}, card in <#{p.channel}>"
            for p in pending
        ],
        "Nothing waits for your approval. 🎉",
        limit,
    )


def connectors_text(connectors: Sequence[ConnectorLine], limit: int = REPLY_LIMIT) -> str:
    return _lines(
        [
            f"{HEALTH_ICON[c.health]} {code(c.key)} ({escape(c.toolkit)}) {c.health.value.replace('_', ' ')}"
            + (f" since {when(c.since)}" if c.health is not Health.OK else "")
            + (
                f" — {escape(truncate(c.last_error, 120))}"
                if c.last_error and c.health is not Health.OK
                else ""
            )
            + (
                f" · ⚠️ over-privileged: {', '.join(code(w) for w in c.over_privileged)}"
                " (no step needs it)"
                if c.over_privileged
                else ""
            )
            for c in connectors
        ],
        "No connectors yet.",
        limit,
    )


def audit_text(events: Sequence[AuditEvent]) -> str:
    return _lines(
        [
            f"`#{e.seq}` {when(e.at)} {user(e.actor)} {code(e.action)} — {escape(truncate(e.summary, 150))}"
            for e in events
        ],
        "No audit events match.",
    )

"""The words and numbers both renderings share, so the PDF and the Markdown say the same."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from trame_bot.domain.downtime import spoken
from trame_bot.domain.incident import IncidentReport, Outage
from trame_bot.domain.values import counted

ACTIONS = {
    "workflow.created": "Workflow created",
    "workflow.changed": "Workflow changed",
    "workflow.status_changed": "Status changed",
    "workflow.trigger_changed": "Trigger changed",
    "connector.connected": "Connector connected",
    "connector.changed": "Connector changed",
    "connector.health_changed": "Health changed",
    "run.requested": "Run requested",
    "run.approval_recorded": "Approval recorded",
    "run.approved": "Run approved",
    "run.declined": "Run declined",
    "run.expired": "Run expired",
    "run.cancelled": "Run cancelled",
}


def when(report: IncidentReport, at: datetime) -> str:
    """A moment in the workspace's time zone, to the minute."""
    return f"{at.astimezone(ZoneInfo(report.timezone)):%Y-%m-%d %H:%M}"


def action(name: str) -> str:
    return ACTIONS.get(name, name)


def actor(name: str) -> str:
    """`slack:U0ABC` → `U0ABC (Slack)`: who acted, as a client can read it."""
    kind, _, who = name.partition(":")
    if " as " in name or not who:
        return {"cli": "operator (command line)", "system": "trame-bot"}.get(name, name)
    return {"slack": f"{who} (Slack)", "api": f"{who} (API key)"}.get(kind, name)


def window(report: IncidentReport) -> str:
    w = report.window
    return f"{when(report, w.since)} to {when(report, w.until)} ({report.timezone})"


def outage_line(outage: Outage) -> str:
    spans = outage.spans
    if not spans:
        return f"{outage.entity_type} {outage.key} was never {outage.state} in the window"
    still = " (still at the window's end)" if spans[-1].open_at_end else ""
    return (
        f"{outage.entity_type} {outage.key} was {outage.state} for {spoken(outage.total)} "
        f"in {counted(len(spans), 'stretch', 'stretches')}{still}"
    )


def runs_line(report: IncidentReport) -> str:
    r = report.runs
    return (
        f"{counted(r.requested, 'run')} requested, {r.approved} approved, {r.declined} declined, "
        f"{r.expired} expired, {r.cancelled} cancelled, {r.refused} refused by the gate"
    )


def span_rows(report: IncidentReport) -> Iterator[tuple[str, str, str, str, str]]:
    """(entity, state, from, to, duration) for every stretch, open ends said as such."""
    for outage in report.outages:
        for span in outage.spans:
            start = ("before " if span.open_at_start else "") + when(report, span.start)
            end = ("still, at " if span.open_at_end else "") + when(report, span.end)
            yield (
                f"{outage.entity_type}:{outage.key}",
                outage.state,
                start,
                end,
                spoken(span.length),
            )


def verify_command(report: IncidentReport, export_name: str) -> str:
    anchors = report.anchors
    assert anchors is not None
    return (
        f"trame-bot audit verify --file {export_name} \\\n"
        f"    --after {anchors.first_prev_hash} \\\n"
        f"    --last {anchors.last_hash}"
    )


def verification_text(report: IncidentReport, export_name: str) -> str:
    anchors = report.anchors
    if anchors is None:
        return "No audit event falls in this window, so there is nothing to verify."
    return (
        f"The JSON Lines file beside this report, {export_name}, is the export of this "
        f"workspace's tamper-evident audit chain from event #{anchors.first_seq} to "
        f"#{anchors.last_seq} ({counted(anchors.exported, 'event')}), which holds every event "
        "listed here. Each event's hash covers its content and the hash of the event before "
        "it, so the command below (it needs no access to trame-bot's database) names the first "
        "event that was edited, removed, re-ordered or invented, and --after and --last check "
        "that the file starts and ends where this report says."
    )

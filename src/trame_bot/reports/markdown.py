"""The incident report as Markdown, for pasting into a ticket, a mail or a wiki."""

from __future__ import annotations

import re
from collections.abc import Sequence

from trame_bot.domain.incident import IncidentReport, category_label
from trame_bot.reports import wording as w

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def md(text: str | None) -> str:
    """Plain text made inert in Markdown: one line, no emphasis, links or table breaks."""
    if not text:
        return "—"
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    if not rows:
        return ["_None in this window._", ""]
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]


def render_markdown(report: IncidentReport, export_name: str) -> str:
    r = report
    lines = [
        f"# Incident report: {md(r.entity_name)} ({md(r.entity)})",
        "",
        f"Workspace **{md(r.workspace_name)}** · {md(w.window(r))} · prepared "
        f"{w.when(r, r.generated_at)} by {md(w.actor(r.generated_by))}",
        "",
        "## Summary",
        "",
        *(f"- {md(w.outage_line(o))}" for o in r.outages),
        f"- {md(w.runs_line(r))}",
        f"- {len(r.remediation)} remediation actions, {len(r.timeline)} events in all",
        "",
        "## Paused and unhealthy",
        "",
        *_table(
            ("Entity", "State", "From", "To", "Duration"),
            [tuple(md(cell) for cell in row) for row in w.span_rows(r)],
        ),
        "## Runs",
        "",
        md(w.runs_line(r)) + ".",
        "",
        "### Declined runs",
        "",
        *_table(
            ("When", "Run", "Workflow", "Declined by", "Category", "Reason"),
            [
                (
                    w.when(r, d.at),
                    f"`{d.run_id}`",
                    md(d.workflow),
                    md(w.actor(d.by)),
                    md(category_label(d.category)),
                    md(d.reason),
                )
                for d in r.declines
            ],
        ),
        "## Remediation",
        "",
        *_table(
            ("When", "Who", "What", "Why"),
            [
                (w.when(r, e.at), md(w.actor(e.actor)), md(e.summary), md(e.reason))
                for e in r.remediation
            ],
        ),
        "## Timeline",
        "",
        *_table(
            ("#", "When", "Who", "Event", "What", "Why"),
            [
                (
                    str(e.seq),
                    w.when(r, e.at),
                    md(w.actor(e.actor)),
                    md(w.action(e.action)),
                    md(e.summary),
                    md(e.reason),
                )
                for e in r.timeline
            ],
        ),
        "## Verification",
        "",
        md(w.verification_text(r, export_name)),
        "",
    ]
    if r.anchors is not None:
        lines += [
            "```",
            w.verify_command(r, export_name),
            "```",
            "",
            f"- First event: #{r.anchors.first_seq}, after `{r.anchors.first_prev_hash}`",
            f"- Last event: #{r.anchors.last_seq}, hash `{r.anchors.last_hash}`",
            "",
            *_table(
                ("#", "When", "Event", "Hash"),
                [
                    (str(e.seq), w.when(r, e.at), md(w.action(e.action)), f"`{e.hash}`")
                    for e in r.timeline
                ],
            ),
        ]
    return "\n".join(lines)

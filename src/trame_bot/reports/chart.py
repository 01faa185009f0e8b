"""The report's timeline chart: a lane per workflow and connector with its paused or unhealthy
stretches, and marks for declined runs and remediation, as PNG bytes (Agg, no display, no
pyplot state shared between threads)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from trame_bot.domain.incident import IncidentReport

TICKS = 6
PAUSED, UNHEALTHY, MARK, REMEDY = "#d9822b", "#c23030", "#5c7080", "#0f9960"


def timeline_png(report: IncidentReport, *, width_in: float = 7.2) -> bytes:
    zone = ZoneInfo(report.timezone)
    lanes = [f"{o.entity_type} {o.key}" for o in report.outages] + ["declined runs", "remediation"]
    figure = Figure(figsize=(width_in, 0.9 + 0.42 * len(lanes)), dpi=160)
    axes = figure.add_subplot()

    since, until = report.window.since, report.window.until

    def x(at: datetime) -> float:
        """Hours since the window's start: plain numbers, ticks labelled below."""
        return (at - since).total_seconds() / 3600

    for row, outage in enumerate(report.outages):
        color = PAUSED if outage.state == "paused" else UNHEALTHY
        bars = [(x(s.start), x(s.end) - x(s.start)) for s in outage.spans]
        axes.broken_barh(bars, (row - 0.3, 0.6), facecolors=color)
    declined_row, remedy_row = len(lanes) - 2, len(lanes) - 1
    axes.scatter(
        [x(d.at) for d in report.declines],
        [declined_row] * len(report.declines),
        marker="x",
        color=MARK,
        zorder=3,
    )
    axes.scatter(
        [x(e.at) for e in report.remediation],
        [remedy_row] * len(report.remediation),
        marker="^",
        color=REMEDY,
        zorder=3,
    )
    axes.set_xlim(0, x(until))
    axes.set_ylim(len(lanes) - 0.5, -0.5)
    axes.set_yticks(range(len(lanes)), lanes, fontsize=8)
    ticks = [since + (until - since) * i / TICKS for i in range(TICKS + 1)]
    fmt = "%m-%d %H:%M" if until - since > timedelta(days=1) else "%H:%M"
    axes.set_xticks([x(t) for t in ticks], [f"{t.astimezone(zone):{fmt}}" for t in ticks])
    axes.tick_params(axis="x", labelsize=7)
    axes.grid(axis="x", color="#e1e8ed", linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.set_title(
        f"Paused (orange), unhealthy (red), declines (x), remediation (▲) · {report.timezone}",
        fontsize=8,
        loc="left",
    )
    figure.tight_layout()
    out = io.BytesIO()
    FigureCanvasAgg(figure)  # the Agg canvas draws it: no display, no pyplot
    figure.savefig(out, format="png")
    return out.getvalue()

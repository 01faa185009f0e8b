"""The slope rows as a chart (PNG) and as Markdown tables, from one or more results files.

`python -m bench` draws the chart of its own run next to its results (`bench/results.png`).
For the docs, one chart for both databases and the tables:

    python -m bench.chart sqlite.json postgresql.json --png docs/performance.png --markdown
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.report import SLOPE

Run = tuple[str, list[dict[str, Any]]]
"""A run's label (its database) and its results, as saved in results.json."""

AXES = (
    ("workflows", "workflows in the workspace", "/trame ack; App Home read (ms)"),
    ("workspaces", "workspaces in the database", "/trame status ack; App Home waiting list (ms)"),
    ("steps", "steps of the run", "card build (ms)"),
    ("audit events", "events in the workspace's audit log", "/trame status ack (ms)"),
)


def load(path: Path) -> Run:
    document = json.loads(path.read_text(encoding="utf-8"))
    return str(document["meta"]["database"]), list(document["results"])


def slope_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if r["target"] == SLOPE and "axis" in r["details"]]


def slope_chart(runs: Sequence[Run], path: Path) -> Path | None:
    """One panel per axis (workflows, workspaces, steps, audit events), log-log, a line per series and
    database for p50 (solid) and p95 (dashed); None when no run has slope rows."""
    if not any(slope_rows(results) for _, results in runs):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    figure, panels = plt.subplots(1, len(AXES), figsize=(20, 4.6))
    for panel, (axis, xlabel, ylabel) in zip(panels, AXES, strict=True):
        for label, results in runs:
            series: dict[str, list[dict[str, Any]]] = {}
            for row in slope_rows(results):
                if row["details"]["axis"] == axis:
                    series.setdefault(row["details"]["series"], []).append(row["details"])
            for name, points in series.items():
                points.sort(key=lambda d: d["size"])
                sizes = [d["size"] for d in points]
                tag = f"{name} ({label})" if len(runs) > 1 else name
                (line,) = panel.plot(sizes, [d["p50_ms"] for d in points], "o-", label=tag)
                panel.plot(
                    sizes, [d["p95_ms"] for d in points], "x--", color=line.get_color(), alpha=0.6
                )
        panel.set_xscale("log")
        panel.set_yscale("log")
        # At least a decade high, so that a flat series reads flat instead of its noise being
        # stretched over the panel; plain numbers at 1, 2 and 5 of each decade.
        low, high = panel.get_ylim()
        panel.set_ylim(low, max(high, low * 10))
        panel.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        panel.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        panel.yaxis.set_minor_formatter(NullFormatter())
        panel.set_xlabel(xlabel)
        panel.set_ylabel(ylabel)
        panel.grid(True, which="both", alpha=0.3)
        panel.legend(fontsize=7, title="p50 solid, p95 dashed", title_fontsize=7)
    figure.suptitle("trame-bot: how cost grows (bench slope rows)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def markdown(results: Sequence[dict[str, Any]]) -> str:
    """The rows with a target, then the slope rows with p50 and p95."""

    def what(r: dict[str, Any]) -> str:
        return str(r["what"]).replace("|", "\\|")

    lines = [
        "| row | what | value | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r["target"] == SLOPE:
            continue
        value = ("yes" if r["value"] else "no") if r["unit"] == "bool" else _number(r["value"])
        unit = "" if r["unit"] == "bool" else f" {r['unit']}"
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}×"
        lines.append(
            f"| {r['row']} | {what(r)} | {value}{unit} | {_number(r['baseline'])} | {ratio} "
            f"| {r['target']} | {'yes' if r['met'] else '**no**'} |"
        )
    if len(lines) == 2:
        lines = []  # no row with a target (a slope-only run)
    lines += _cpu_lines(results, what, bool(lines))
    slope = slope_rows(results)
    if slope:
        lines += [
            *([""] if lines else []),
            "| row | what | p50 | p95 | growth of p50 |",
            "|---|---|---|---|---|",
        ]
        for r in slope:
            d = r["details"]
            ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}×"
            lines.append(
                f"| {r['row']} | {what(r)} | {_number(d['p50_ms'])} ms "
                f"| {_number(d['p95_ms'])} ms | {ratio} |"
            )
    return "\n".join(lines)


def _cpu_lines(
    results: Sequence[dict[str, Any]], what: Callable[[dict[str, Any]], str], after: bool
) -> list[str]:
    """Where the CPU of each rate row went, per request and process, and the machine's ceiling
    (`bench.cpu.machine_ceiling`): the ratio no server design beats on this machine."""
    rows = [r for r in results if "machine_ceiling_ratio" in r["details"]]
    if not rows:
        return []
    lines = [
        *([""] if after else []),
        "| row | what | server | its outbox process | fake Slack | database | load generator "
        "| ceiling | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        d = r["details"]
        cpu = d.get("cpu_ms_per_click_to_last_update") or d["cpu_ms_per_request"]
        spent = [
            "—" if name not in cpu else f"{cpu[name]:.2f} ms"
            for name in ("server", "server_outbox", "fake_slack", "database", "loadgen")
        ]
        lines.append(
            f"| {r['row']} | {what(r)} | {' | '.join(spent)} "
            f"| {d['machine_ceiling_ratio']:.2f}× | {r['target']} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chart", description=__doc__)
    parser.add_argument("results", nargs="+", type=Path, help="results.json files")
    parser.add_argument("--png", type=Path, help="write the slope chart here")
    parser.add_argument("--markdown", action="store_true", help="print the tables")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    runs = [load(path) for path in args.results]
    if args.png and slope_chart(runs, args.png) is None:
        print("no slope rows in these results", file=sys.stderr)
    if args.markdown:
        for label, results in runs:
            print(f"\n### {label}\n\n{markdown(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

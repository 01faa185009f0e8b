"""One benchmark figure, its baseline and target, and how the set is printed and saved."""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Result:
    row: str
    """The row of the benchmark table it answers, e.g. `1a`."""
    what: str
    value: float
    unit: str
    baseline: float | None
    """The same measure on the baseline, in the same run (None when the target is absolute)."""
    baseline_what: str | None
    ratio: float | None
    """value ÷ baseline, or for times baseline-relative cost (see `target`)."""
    target: str
    met: bool
    details: dict[str, Any] = field(default_factory=dict)


def at_least(
    row: str,
    what: str,
    value: float,
    unit: str,
    baseline: float,
    baseline_what: str,
    minimum: float,
    **details: Any,
) -> Result:
    """A rate that must reach `minimum` × the baseline's rate."""
    ratio = value / baseline if baseline else 0.0
    return Result(
        row,
        what,
        value,
        unit,
        baseline,
        baseline_what,
        ratio,
        f"≥ {minimum:g}×",
        ratio >= minimum,
        details,
    )


def at_most_times(
    row: str,
    what: str,
    value: float,
    unit: str,
    baseline: float,
    baseline_what: str,
    maximum: float,
    **details: Any,
) -> Result:
    """A duration that may be at most `maximum` × the baseline's duration."""
    ratio = value / baseline if baseline else float("inf")
    return Result(
        row,
        what,
        value,
        unit,
        baseline,
        baseline_what,
        ratio,
        f"≤ {maximum:g}×",
        ratio <= maximum,
        details,
    )


def at_most(
    row: str,
    what: str,
    value: float,
    unit: str,
    limit: float,
    *,
    baseline: float | None = None,
    baseline_what: str | None = None,
    strict: bool = False,
    **details: Any,
) -> Result:
    """An absolute ceiling; a baseline, when given, is shown for comparison only."""
    ratio = value / baseline if baseline else None
    met = value < limit if strict else value <= limit
    sign = "<" if strict else "≤"
    return Result(
        row,
        what,
        value,
        unit,
        baseline,
        baseline_what,
        ratio,
        f"{sign} {limit:g} {unit}",
        met,
        details,
    )


def measured(
    row: str,
    what: str,
    value: float,
    unit: str,
    baseline: float,
    baseline_what: str,
    **details: Any,
) -> Result:
    """A figure with no target (how cost grows with size): the ratio is value ÷ the same
    measure at the smallest size. Not counted among the targets met (see `graded`)."""
    return Result(
        row,
        what,
        value,
        unit,
        baseline,
        baseline_what,
        value / baseline if baseline else None,
        SLOPE,
        True,
        details,
    )


SLOPE = "slope"
"""The target of a `measured` figure: none, it shows how cost grows."""


def graded(results: Sequence[Result]) -> list[Result]:
    """The results that have a target."""
    return [r for r in results if r.target != SLOPE]


class Phases:
    """Prints how long each phase of a group took, to stderr (where the run's progress goes)."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.last = time.perf_counter()

    def __call__(self, what: str) -> None:
        now = time.perf_counter()
        print(f"   {self.group} {what}: {now - self.last:.1f} s", file=sys.stderr, flush=True)
        self.last = now


def check(row: str, what: str, ok: bool, **details: Any) -> Result:
    """A correctness condition measured alongside a figure (every run decided once…)."""
    return Result(row, what, float(ok), "bool", None, None, None, "true", ok, details)


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(results: Sequence[Result], echo: Callable[[str], None] = print) -> None:
    headers = ("row", "what", "value", "baseline", "ratio", "target", "met")
    rows = [
        (
            r.row,
            r.what,
            f"{_number(r.value)} {r.unit}" if r.unit != "bool" else ("yes" if r.value else "no"),
            _number(r.baseline),
            "—" if r.ratio is None else f"{r.ratio:.2f}×",
            r.target,
            "—" if r.target == SLOPE else "yes" if r.met else "NO",
        )
        for r in results
    ]
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)
    ]
    for line in (headers, *rows):
        echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)
            ).rstrip()
        )


def save(path: Path, results: Sequence[Result], meta: dict[str, Any]) -> None:
    document = {
        "meta": {"python": platform.python_version(), "machine": platform.machine(), **meta},
        "results": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")

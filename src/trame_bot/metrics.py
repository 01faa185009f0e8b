"""Prometheus metrics in text exposition format, with no dependency: counters and histograms
kept in memory by this process, gauges read from the database when scraped."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

Labels = tuple[tuple[str, str], ...]
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0, 10.0)


def _labels(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def _format(labels: Labels, extra: Iterable[tuple[str, str]] = ()) -> str:
    pairs = [*labels, *extra]
    if not pairs:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self.values: dict[Labels, float] = defaultdict(float)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self.values[_labels(labels)] += amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{_format(k)} {v:g}" for k, v in sorted(self.values.items())]
        return lines


class Histogram:
    def __init__(
        self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        self.counts: dict[Labels, list[int]] = {}
        self.sums: dict[Labels, float] = defaultdict(float)

    def observe(self, value: float, **labels: str) -> None:
        key = _labels(labels)
        counts = self.counts.setdefault(key, [0] * (len(self.buckets) + 1))
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                counts[index] += 1
        counts[-1] += 1
        self.sums[key] += value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, counts in sorted(self.counts.items()):
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                le = "+Inf" if bound == math.inf else f"{bound:g}"
                lines.append(f"{self.name}_bucket{_format(key, [('le', le)])} {count}")
            lines.append(f"{self.name}_sum{_format(key)} {self.sums[key]:g}")
            lines.append(f"{self.name}_count{_format(key)} {counts[-1]}")
        return lines


class Metrics:
    """The process's metrics; one instance, built by the composition root."""

    def __init__(self) -> None:
        self.requests = Counter(
            "trame_http_requests_total", "HTTP requests by route, method and outcome."
        )
        self.latency = Histogram("trame_http_request_seconds", "HTTP response time by route.")
        self.ack = Histogram(
            "trame_slack_ack_seconds", "Time to answer Slack (the ack) on /slack/events."
        )
        self.job_runs = Counter("trame_job_runs_total", "Scheduled job runs by job and outcome.")

    def render(self, gauges: Mapping[str, tuple[str, float]]) -> str:
        lines: list[str] = []
        for metric in (self.requests, self.latency, self.ack, self.job_runs):
            lines += metric.render()
        for name, (help_text, value) in gauges.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"

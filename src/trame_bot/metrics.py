"""Prometheus metrics with prometheus_client: counters and histograms kept by this process, the
process and platform collectors (CPU, memory, open files), and gauges read from the database
when scraped.

Each `Metrics` has its own `CollectorRegistry` rather than the library's global one: tests
build many servers in one process, and a second registration of a name in one registry fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0, 10.0)
"""3 s is a bucket of its own: it is Slack's deadline for an ack."""

Gauges = Mapping[str, tuple[str, float]]
"""Metric name → (help text, value), read from the database for one scrape."""


class Metrics:
    """The process's metrics; one instance, built by the composition root."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "trame_http_requests_total",
            "HTTP requests by route, method and outcome.",
            ("route", "method", "outcome"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "trame_http_request_seconds",
            "HTTP response time by route.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ack = Histogram(
            "trame_slack_ack_seconds",
            "Time to answer Slack (the ack) on /slack/events.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.job_runs = Counter(
            "trame_job_runs_total",
            "Scheduled job runs by job and outcome.",
            ("job", "outcome"),
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def exposition(self, gauges: Gauges) -> bytes:
        """The text exposition of everything this process counts, plus `gauges`, which the
        caller has just read (the database is async; a collector's `collect` cannot await)."""
        return generate_latest(_Scrape(self.registry, gauges))


class _Scrape(Collector):
    """One scrape: the registry's metrics followed by the database's figures."""

    def __init__(self, registry: CollectorRegistry, gauges: Gauges) -> None:
        self.registry = registry
        self.gauges = gauges

    def collect(self) -> Iterable[Metric]:
        yield from self.registry.collect()
        yield from _gauges(self.gauges)


def _gauges(gauges: Gauges) -> Iterator[Metric]:
    for name, (help_text, value) in gauges.items():
        yield GaugeMetricFamily(name, help_text, value=value)

"""Where a benchmark's CPU goes: every process that works for a request, and what the machine's
cores leave for the server under test.

Every process of a Slack or API row shares this machine's cores: the load generator, the server
under test, the fake Slack (which validates every Web API call as Slack does, on Slack's
machines in production) and, on PostgreSQL, the database server's processes. A row's rate can
never exceed what the cores allow for the sum of their CPU per request. `machine_ceiling`
turns that into a figure the notes can argue with: the rate the row would reach if trame-bot's
server cost no more CPU per request than the bare baseline's, everything else as measured. A
target above that ceiling cannot be met on this machine by any design of the server; it could
be by one that asks less of the database or of Slack.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

DATABASE = "database"
"""The name under which PostgreSQL's server processes are counted, all together."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc; 0 once it is
    gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_processes(database: str) -> dict[int, float]:
    """The PostgreSQL server processes that work for `database` (its backends) or for every
    database (the checkpointer, WAL writer, background writer…), with their CPU so far. Other
    databases' backends (another run's tests) are left out: a backend's process title names
    its database and client, `postgres: 15/main: USER DATABASE 127.0.0.1(PORT) STATE`."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().split()
        except OSError:
            continue
        backend = any(word.endswith(")") or word == "[local]" for word in title)
        if not backend or database in title:
            found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


def database_name(url: str | None) -> str | None:
    """The PostgreSQL database a URL names (its backends' CPU is counted); None otherwise."""
    if url is None or not url.startswith("postgresql"):
        return None
    return make_url(url).database


class Meter:
    """CPU spent between `start` and `stop` by named processes and, when `postgres` names the
    database, by the PostgreSQL server's processes working for it. A backend that exits in
    between loses its time (the benchmarks' pools keep theirs open); one that starts in between
    counts from its start."""

    def __init__(self, processes: Mapping[str, int], *, postgres: str | None) -> None:
        self._processes = dict(processes)
        self._postgres = postgres
        self._started: dict[str, float] = {}
        self._database: dict[int, float] = {}

    def start(self) -> None:
        self._started = {name: cpu_seconds(pid) for name, pid in self._processes.items()}
        self._database = _postgres_processes(self._postgres) if self._postgres else {}

    def stop(self) -> dict[str, float]:
        """Seconds of CPU per process name since `start`."""
        spent = {
            name: cpu_seconds(pid) - self._started[name] for name, pid in self._processes.items()
        }
        if self._postgres:
            now = _postgres_processes(self._postgres)
            spent[DATABASE] = sum(now[pid] - self._database.get(pid, 0.0) for pid in now)
        return spent


def per_request(spent: Mapping[str, float], requests: int) -> dict[str, float]:
    """CPU milliseconds per request, by process."""
    return {name: round(1000 * s / requests, 3) if requests else 0.0 for name, s in spent.items()}


def machine_ceiling(
    subject_ms: Mapping[str, float], bare_server_ms: float, baseline_rate: float
) -> dict[str, Any]:
    """The rate this machine's cores allow if the server (with its helpers: `server_…`) cost
    `bare_server_ms` per request and the other processes what `subject_ms` says they spent; as
    a ratio to the baseline too."""
    others = sum(ms for name, ms in subject_ms.items() if not name.startswith("server"))
    per_request_ms = others + bare_server_ms
    cores = len(os.sched_getaffinity(0))
    rate = cores * 1000 / per_request_ms if per_request_ms else 0.0
    return {
        "machine_ceiling_per_s": round(rate, 1),
        "machine_ceiling_ratio": round(rate / baseline_rate, 3) if baseline_rate else 0.0,
        "machine_cores": cores,
    }

"""The load generator: its own process, so that it never competes with the server for a core.

`python -m bench.loadgen` reads a spec (JSON) on stdin, builds and signs every request before
the clock starts, then sends them over keep-alive connections from `concurrency` closed-loop
lanes (each lane sends its next request when the previous answer arrived) and prints one JSON
result on stdout. `run(spec)` does that from another process.

A request is one of:
- `{"command": "status wf", "user": "U…", "channel": "C…"}`: a signed `/trame` slash command;
- `{"click": run_id, "user": "U…", "channel": "C…", "ts": "…"}`: a signed Approve click;
- `{"post": {...}, "token": "…"}`: a JSON POST with `Authorization: Bearer`.
A Slack request may name its `team` (the id it carries; `T0TEAM` otherwise, one workspace's
Slack). A request may name its `lane`; otherwise requests are dealt round-robin. Within a lane the order
is kept (pause before resume of the same workflow).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.cpu import Meter, per_request
from trame_bot.sandbox.slack_requests import SlackRequests
from trame_bot.slack.ids import Action, BlockId

Spec = dict[str, Any]


@dataclass(frozen=True)
class Prepared:
    body: bytes
    headers: dict[str, str]


def prepare(spec: Spec, item: dict[str, Any], slack: SlackRequests) -> Prepared:
    fake = spec.get("fake_url")
    if "command" in item:
        user = str(item["user"])
        signed = slack.command(
            str(item["command"]),
            user=user,
            channel=str(item["channel"]),
            response_url=f"{fake}respond/cmd-{user}" if fake else None,
        )
        return Prepared(signed.body, signed.headers)
    if "click" in item:
        user = str(item["user"])
        signed = slack.block_action(
            user=user,
            action_id=str(item.get("action", Action.APPROVE.value)),
            value=str(item["click"]),
            block_id=BlockId.RUN_ACTIONS.value,
            channel=str(item["channel"]),
            message_ts=str(item.get("ts", "1.000001")),
            response_url=f"{fake}respond/act-{user}" if fake else None,
        )
        return Prepared(signed.body, signed.headers)
    body = json.dumps(item["post"]).encode()
    return Prepared(
        body,
        {"Content-Type": "application/json", "Authorization": f"Bearer {item['token']}"},
    )


def lanes_of(spec: Spec, items: Sequence[dict[str, Any]]) -> list[list[Prepared]]:
    secret = str(spec.get("signing_secret") or "")
    teams: dict[str, SlackRequests] = {}
    lanes: list[list[Prepared]] = [[] for _ in range(int(spec["concurrency"]))]
    for n, item in enumerate(items):
        team = str(item.get("team", "T0TEAM"))
        slack = teams.get(team) or teams.setdefault(team, SlackRequests(secret, team_id=team))
        lanes[int(item.get("lane", n)) % len(lanes)].append(prepare(spec, item, slack))
    return [lane for lane in lanes if lane]


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest rank on an ascending list; 0 when there is nothing."""
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


async def _drive(
    session: aiohttp.ClientSession, url: str, lanes: list[list[Prepared]]
) -> tuple[list[float], Counter[str], Counter[str]]:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    bodies: Counter[str] = Counter()

    async def lane(requests: list[Prepared]) -> None:
        for request in requests:
            started = time.perf_counter()
            try:
                async with session.post(url, data=request.body, headers=request.headers) as r:
                    body = await r.read()
                    statuses[str(r.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                statuses[type(exc).__name__] += 1
                body = b""
            latencies.append(time.perf_counter() - started)
            bodies[body[:60].decode("utf-8", "replace")] += 1

    await asyncio.gather(*(lane(requests) for requests in lanes))
    return latencies, statuses, bodies


async def generate(spec: Spec) -> dict[str, Any]:
    url = str(spec["url"])
    warmup = lanes_of(spec, spec.get("warmup", []))
    lanes = lanes_of(spec, spec["requests"])  # every request is signed before the clock starts
    connector = aiohttp.TCPConnector(limit=len(lanes) or 1, keepalive_timeout=120)
    timeout = aiohttp.ClientTimeout(total=float(spec.get("timeout", 120)))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if warmup:
            await _drive(session, url, warmup)
        meter = Meter(_watched(spec), postgres=spec.get("postgres"))
        meter.start()
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        started_at, started = time.time(), time.perf_counter()
        latencies, statuses, bodies = await _drive(session, url, lanes)
        elapsed = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        spent = meter.stop()
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    server_cpu = spent.get("server", 0.0)
    ordered = sorted(latencies)
    return {
        "count": len(latencies),
        "concurrency": len(lanes),
        "elapsed": elapsed,
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(ordered, 0.50) * 1000,
        "p95_ms": percentile(ordered, 0.95) * 1000,
        "p99_ms": percentile(ordered, 0.99) * 1000,
        "max_ms": (ordered[-1] if ordered else 0.0) * 1000,
        "statuses": dict(statuses),
        "bodies": dict(bodies.most_common(8)),
        "started_at": started_at,
        "finished_at": started_at + elapsed,
        "loadgen_cpu_share": cpu / elapsed if elapsed else 0.0,
        "server_cpu_share": server_cpu / elapsed if elapsed else 0.0,
        "server_cpu_ms_per_request": 1000 * server_cpu / len(latencies) if latencies else 0.0,
        "cpu_ms_per_request": per_request({**spent, "loadgen": cpu}, len(latencies)),
    }


def _watched(spec: Spec) -> dict[str, int]:
    """The processes whose CPU the run counts: the server (`server_pid`) and any `watch`ed
    one (the fake Slack)."""
    named = {"server": int(spec.get("server_pid") or 0), **spec.get("watch", {})}
    return {name: int(pid) for name, pid in named.items() if pid}


async def run(spec: Spec) -> dict[str, Any]:
    """Run the load generator in a child process and return its result."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadgen",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(json.dumps(spec).encode())
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode()[-2000:]}")
    return dict(json.loads(out))


def main() -> None:
    spec = json.load(sys.stdin)
    print(json.dumps(asyncio.run(generate(spec))))


if __name__ == "__main__":
    main()

"""`python -m bench [--quick] [--postgres [URL]] [--only GROUP …]`: run every benchmark, print
the table and write `bench/results.json`.

Each figure is a ratio against a baseline measured in the same run (or an absolute ceiling
where the target is one), so the table holds on a noisy machine. `--quick` runs every row at a
tiny size (a smoke test, not a measurement). `--postgres` runs on PostgreSQL, in a database of
its own that it empties (default postgresql://postgres@127.0.0.1:5432/bench). The slope rows
(group `slope`) have no target: they show how cost grows with size, and are drawn as a chart
next to the results file (`bench/results.png`).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from pathlib import Path

from bench import api_load, audit, chart, memory, report, slack_load, slope, sweep
from bench.harness import FULL, QUICK, ROOT, Target

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/bench"
GROUPS: dict[str, Callable[[Target], Awaitable[list[report.Result]]]] = {
    "slack": slack_load.run,
    "api": api_load.run,
    "audit": audit.run,
    "sweep": sweep.run,
    "memory": memory.run,
    "slope": slope.run,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_POSTGRES,
        metavar="URL",
        help=f"run on PostgreSQL (default {DEFAULT_POSTGRES}); the database is emptied",
    )
    parser.add_argument(
        "--only", nargs="+", choices=list(GROUPS), help="run only these groups of rows"
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "results.json", help="results file"
    )
    parser.add_argument(
        "--size",
        nargs="+",
        default=[],
        metavar="NAME=N",
        help="override a size (bench.harness.Sizes), e.g. memory_runs=5000",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record every trame-bot server with py-spy (if installed) into DIR",
    )
    parser.add_argument(
        "--outbox-process",
        action="store_true",
        help="rows 1–3 with the outbox in its own process (serve --no-outbox + trame-bot outbox)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (logs, databases)"
    )
    return parser.parse_args(argv)


async def run_all(
    target: Target, groups: list[str], failed: list[str] | None = None
) -> list[report.Result]:
    """Every group in turn; a group that raises is named in `failed` (its traceback printed)
    and the others still run, so one failure does not lose a long run's other results."""
    results: list[report.Result] = []
    for name in groups:
        started = time.perf_counter()
        print(f"== {name} …", file=sys.stderr, flush=True)
        try:
            found = await GROUPS[name](target)
        except Exception:
            traceback.print_exc()
            print(f"== {name}: FAILED", file=sys.stderr, flush=True)
            if failed is None:
                raise
            failed.append(name)
            continue
        print(f"== {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        report.table(found, lambda line: print(line, file=sys.stderr))
        results.extend(found)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="trame-bench-"))
    sizes = QUICK if args.quick else FULL
    for override in args.size:
        name, _, value = override.partition("=")
        kind = type(getattr(sizes, name))
        sizes = replace(sizes, **{name: kind(value)})
    target = Target(workdir, args.postgres, sizes, args.profile, args.outbox_process)
    groups = args.only or list(GROUPS)
    started = time.perf_counter()
    failed: list[str] = []
    try:
        results = asyncio.run(run_all(target, groups, failed))
    finally:
        if args.keep:
            print(f"work folder kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print(f"\ntrame-bot benchmarks on {target.dialect}{' (quick)' if args.quick else ''}")
    report.table(results)
    graded = report.graded(results)
    met = sum(r.met for r in graded)
    print(f"\n{met} of {len(graded)} targets met in {elapsed:.0f} s; details in {args.output}")
    report.save(
        args.output,
        results,
        {
            "database": target.dialect,
            "quick": args.quick,
            "outbox_process": args.outbox_process,
            "groups": groups,
            "failed_groups": failed,
            "seconds": round(elapsed, 1),
            "sizes": asdict(target.sizes),
        },
    )
    drawn = chart.slope_chart(
        [chart.load(args.output)], args.output.with_name(f"{args.output.stem}.png")
    )
    if drawn:
        print(f"slope chart: {drawn}")
    if failed:
        print(f"groups that failed (see above): {' '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The audit log from the command line: list, export, verify."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from trame_bot.cli.app import Deps, cli, table, with_deps
from trame_bot.domain.actors import Actor
from trame_bot.domain.values import counted, parse_moment
from trame_bot.errors import InvalidInput
from trame_bot.services import audit as service
from trame_bot.store.audit import AuditFilter


def _filter(entity: str | None, since: str | None, until: str | None, now: datetime) -> AuditFilter:
    kind, ident = service.parse_entity(entity) if entity else (None, None)
    return AuditFilter(
        entity_type=kind,
        entity_id=ident,
        since=parse_moment(since, now) if since else None,
        until=parse_moment(until, now) if until else None,
    )


def filter_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option("--entity", help="workflow:<key>, connector:<key> or run:<id>."),
            click.option("--since", help="ISO date/time or an age like 7d."),
            click.option("--until", help="ISO date/time or an age like 1d."),
        ]
    ):
        fn = option(fn)
    return fn


@cli.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("list")
@click.argument("key")
@filter_options
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@with_deps
async def audit_list(
    deps: Deps, key: str, entity: str | None, since: str | None, until: str | None, limit: int
) -> None:
    """The newest events of workspace KEY, newest first."""
    where = _filter(entity, since, until, deps.clock.now())
    events = await service.list_events(deps.ctx, key, where, Actor.cli(), limit=limit)
    table(
        [
            (
                e.seq,
                f"{e.at:%Y-%m-%d %H:%M:%S}",
                e.actor,
                e.action,
                f"{e.entity_type}:{e.entity_id}",
                e.summary,
            )
            for e in events
        ],
        ("#", "AT (UTC)", "ACTOR", "ACTION", "ENTITY", "SUMMARY"),
    )


@audit.command("export")
@click.argument("key")
@filter_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in service.ExportFormat]),
    default="csv",
    show_default=True,
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="File to write (default: stdout).",
)
@with_deps
async def audit_export(
    deps: Deps,
    key: str,
    entity: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
    output: str | None,
) -> None:
    """Export workspace KEY's events, oldest first, streamed (CSV or JSON Lines)."""
    where = _filter(entity, since, until, deps.clock.now())
    total = await service.count_events(deps.ctx, key, where, Actor.cli())
    chunks = await service.export_events(
        deps.ctx, key, where, service.ExportFormat(fmt), Actor.cli()
    )
    if output is None:
        async for chunk in chunks:
            sys.stdout.write(chunk)
        return
    try:
        # A one-shot CLI process: nothing else waits on this loop while the file is written.
        handle = open(output, "w", encoding="utf-8", newline="")  # noqa: ASYNC230, SIM115
    except OSError as exc:
        raise InvalidInput(f"cannot write {output}: {exc.strerror}") from None
    with (
        handle,
        click.progressbar(
            length=total, label=f"exporting {counted(total, 'event')}", file=sys.stderr
        ) as bar,
    ):
        async for chunk in chunks:
            handle.write(chunk)
            bar.update(chunk.count("\n"))
    click.echo(f"wrote {counted(total, 'event')} to {output}", err=True)


@audit.command("verify")
@click.argument("key")
@with_deps
async def audit_verify(deps: Deps, key: str) -> None:
    """Recompute workspace KEY's hash chain; exits 1 naming the first tampered event."""
    report = await service.verify_chain(deps.ctx, key)
    if not report.ok:
        click.echo(
            f"audit chain BROKEN after {counted(report.checked, 'good event')}: {report.problem}",
            err=True,
        )
        sys.exit(1)
    click.echo(f"audit chain verified: {counted(report.checked, 'event')}")

"""The audit log from the command line: list, export, verify."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from trame_bot.cli.app import LazyGroup, cli, table, with_deps
from trame_bot.cli.audit_file import verify_export
from trame_bot.domain.actors import Actor
from trame_bot.domain.values import counted, parse_moment
from trame_bot.errors import InvalidInput
from trame_bot.services import audit as service
from trame_bot.store.audit import AuditFilter

if TYPE_CHECKING:
    from trame_bot.bootstrap import Deps


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


@cli.group(cls=LazyGroup, lazy={"report": "trame_bot.cli.report"})
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
    chunks = await service.export_bytes(
        deps.ctx, key, where, service.ExportFormat(fmt), Actor.cli()
    )
    if output is None:
        async for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        return
    try:
        # A one-shot CLI process: nothing else waits on this loop while the file is written.
        handle = open(output, "wb")  # noqa: ASYNC230, SIM115
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
            bar.update(chunk.count(b"\n"))
    click.echo(f"wrote {counted(total, 'event')} to {output}", err=True)


@audit.command("verify")
@click.argument("key", required=False)
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False),
    help="Check this JSON Lines export offline instead (no database needed).",
)
@click.option("--after", metavar="HASH", help="With --file: the hash its first event follows.")
@click.option("--last", metavar="HASH", help="With --file: the hash its last event must have.")
@click.option(
    "--full",
    is_flag=True,
    help="Have the database spell every event instead of reading its index of the events "
    "that do not spell their stored bytes (slower; after a restore of copied files).",
)
def audit_verify(
    key: str | None, path: str | None, after: str | None, last: str | None, full: bool
) -> None:
    """Recompute workspace KEY's hash chain; exits 1 naming the first tampered event.

    With --file EXPORT.jsonl, check an export (`audit export --format jsonl`, or the one
    `audit report` writes beside a report) without the database: every line's hash, and that
    each line follows the one before it, so an edited, removed, re-ordered or invented event is
    named. An export of a time window starts mid-chain: its first event's prev_hash is taken as
    given, and events cut from either end at a line boundary go unseen unless --after and
    --last (printed in the report's verification block) pin both ends. An export filtered by
    entity has gaps by design and cannot be verified.
    """
    if path is not None:
        if key is not None or full:
            raise InvalidInput("give a workspace KEY or --file EXPORT.jsonl, not both")
        verify_export(path, after=after, last=last)
        return
    if key is None or after is not None or last is not None:
        raise InvalidInput("name a workspace KEY, or check an export: --file EXPORT.jsonl")
    _verify_chain(key, full)


@with_deps
async def _verify_chain(deps: Deps, key: str, full: bool) -> None:
    report = await service.verify_chain(deps.ctx, key, full=full)
    if not report.ok:
        click.echo(
            f"audit chain BROKEN after {counted(report.checked, 'good event')}: {report.problem}",
            err=True,
        )
        sys.exit(1)
    click.echo(f"audit chain verified: {counted(report.checked, 'event')}")

"""`trame-bot audit report`: the incident report for a client, with its export beside it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from trame_bot.cli.app import with_deps
from trame_bot.cli.audit import audit
from trame_bot.domain.actors import Actor
from trame_bot.domain.values import counted, parse_moment
from trame_bot.errors import InvalidInput
from trame_bot.reports.render import export_file, render
from trame_bot.services import reports
from trame_bot.services.reports import ReportFormat

if TYPE_CHECKING:
    from trame_bot.bootstrap import Deps


@audit.command("report")
@click.argument("key")
@click.option("--entity", required=True, help="workflow:<key> or connector:<key>.")
@click.option("--since", help="ISO date/time or an age like 7d (default: 7 days before until).")
@click.option("--until", help="ISO date/time or an age like 1d (default: now).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice([ReportFormat.PDF.value, ReportFormat.MARKDOWN.value]),
    default=ReportFormat.PDF.value,
    show_default=True,
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: incident-<workspace>-<entity>-<dates>.<format> here). "
    "The JSON Lines export goes beside it, as the same name ending in .jsonl.",
)
@with_deps
async def audit_report(
    deps: Deps,
    key: str,
    entity: str,
    since: str | None,
    until: str | None,
    fmt: str,
    output: Path | None,
) -> None:
    """The incident report on a workflow or connector of workspace KEY, to send to a client:
    a timeline, how long things were paused or unhealthy, runs and declines, remediation, and
    a verification block for the export written beside it (`audit verify --file` checks it)."""
    if output is not None and output.suffix == ".jsonl":
        raise InvalidInput("the report's export takes the .jsonl name: give -o a .pdf or .md file")
    if output is not None and not output.parent.is_dir():
        raise InvalidInput(f"cannot write {output}: no directory {output.parent}")
    now = deps.clock.now()
    bundle = await reports.incident_report(
        deps.ctx,
        key,
        entity,
        parse_moment(since, now) if since else None,
        parse_moment(until, now) if until else None,
        ReportFormat(fmt),
        Actor.cli(),
    )
    path = output or Path(f"{bundle.base_name}.{fmt}")
    beside = path.with_suffix(".jsonl")
    document = render(bundle, ReportFormat(fmt), beside.name)
    try:
        path.write_bytes(document.content)
        beside.write_bytes(export_file(bundle).content)
    except OSError as exc:
        raise InvalidInput(f"cannot write {exc.filename}: {exc.strerror}") from None
    anchors = bundle.report.anchors
    exported = counted(anchors.exported if anchors else 0, "event")
    click.echo(
        f"wrote {path} ({counted(len(bundle.report.timeline), 'event')}) and its export "
        f"{beside} ({exported}); check it with: trame-bot audit verify --file {beside}"
    )

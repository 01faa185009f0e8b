"""`trame-bot audit verify --file`: an export checked offline, one line of verdict."""

from __future__ import annotations

import sys

import click

from trame_bot.domain.audit_file import verify_lines
from trame_bot.domain.values import counted
from trame_bot.errors import InvalidInput


def verify_export(path: str, *, after: str | None, last: str | None) -> None:
    """Exit 0 with the export's span and end hashes, or 1 naming the first line at fault."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            report = verify_lines(handle, after=after, last=last)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text: not an audit export") from None
    if not report.ok:
        click.echo(
            f"export {path} does NOT verify after {counted(report.checked, 'good event')}: "
            f"{report.problem}",
            err=True,
        )
        sys.exit(1)
    click.echo(
        f"export verified: {counted(report.checked, 'event')} of workspace {report.workspace}, "
        f"#{report.first_seq} (after {report.first_prev_hash}) to #{report.last_seq} "
        f"(hash {report.last_hash})"
    )

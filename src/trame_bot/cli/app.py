"""The command group, its error translation, and the helpers every command uses."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import click

from trame_bot import __version__
from trame_bot.bootstrap import Deps, build
from trame_bot.config import load_settings
from trame_bot.errors import ConfigError, InvalidInput, SchemaNotReady, TrameError
from trame_bot.logs import configure_logging
from trame_bot.store.migrate import check_schema

log = logging.getLogger("trame_bot.cli")
P = ParamSpec("P")
T = TypeVar("T")


class Group(click.Group):
    """Turns every error into one line on stderr; unexpected ones get a reference id.

    Exit codes: 1 an action refused (or the database down: try again), 2 the configuration
    is wrong, including a database schema that is missing or out of date (waiting will not
    fix it; `trame-bot db upgrade` will), 70 a bug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, SchemaNotReady) as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2)
        except InvalidInput as exc:
            details = "; ".join(f"{k}: {v}" for k, v in list(exc.fields.items())[1:4])
            click.echo(
                f"error: {exc.message}" + (f" (also {details})" if details else ""), err=True
            )
            sys.exit(1)
        except TrameError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception:
            ref = secrets.token_hex(4)
            log.exception("unexpected error (ref %s)", ref)
            click.echo(f"error: something went wrong inside trame-bot (reference {ref})", err=True)
            sys.exit(70)


@click.group(cls=Group)
@click.version_option(__version__, prog_name="trame-bot")
def cli() -> None:
    """trame-bot: approvals, governance and audit for Trame workflows, in Slack."""


def main() -> None:
    cli(prog_name="trame-bot")


def with_deps(fn: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Run an async command with freshly built dependencies, closed afterwards, once the
    database's schema is known to be the one this code expects (otherwise the command would
    fail halfway with a driver's error about some table)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        settings = load_settings()
        configure_logging(settings)

        async def run() -> T:
            deps = build(settings)
            try:
                await check_schema(deps.db)
                return await fn(deps, *args, **kwargs)
            finally:
                await deps.close()

        return asyncio.run(run())

    return wrapper


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
    cells = [[str(h) for h in headers]] + [
        ["" if c is None else str(c) for c in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None


__all__ = ["Deps", "cli", "main", "read_file", "table", "with_deps"]

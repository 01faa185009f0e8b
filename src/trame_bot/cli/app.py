"""The command group, its error translation, and the helpers every command uses.

Each command's module is imported when that command runs (`COMMANDS`), not when the CLI
starts: `trame-bot audit export` loads the database layer and nothing of Slack, aiohttp, the
scheduler or the PDF report, and a one-shot command does not pay for all of them at start."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import wraps
from importlib import import_module
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from trame_bot import __version__
from trame_bot.errors import ConfigError, InvalidInput, SchemaNotReady, TrameError

if TYPE_CHECKING:
    pass

log = logging.getLogger("trame_bot.cli")
P = ParamSpec("P")
T = TypeVar("T")

COMMANDS = {
    "alert": "trame_bot.cli.alerts",
    "apikey": "trame_bot.cli.admin",
    "audit": "trame_bot.cli.audit",
    "connector": "trame_bot.cli.governance",
    "db": "trame_bot.cli.admin",
    "keys": "trame_bot.cli.keys",
    "manifest": "trame_bot.cli.manifest",
    "member": "trame_bot.cli.admin",
    "outbox": "trame_bot.cli.server",
    "run": "trame_bot.cli.governance",
    "scheduler": "trame_bot.cli.server",
    "serve": "trame_bot.cli.server",
    "workflow": "trame_bot.cli.governance",
    "workspace": "trame_bot.cli.admin",
}
"""Each top-level command and the module that defines it (and attaches it to `cli`)."""


class LazyGroup(click.Group):
    """A group whose commands are defined in modules imported on first use: `lazy` maps a
    command's name to its module, which attaches the command to this group when imported."""

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            import_module(self.lazy[cmd_name])
        return self.commands.get(cmd_name)


class Group(LazyGroup):
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


@click.group(cls=Group, lazy=COMMANDS)
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
        from trame_bot.bootstrap import build
        from trame_bot.config import load_settings
        from trame_bot.logs import configure_logging
        from trame_bot.store.migrate import check_schema

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


__all__ = ["COMMANDS", "LazyGroup", "cli", "main", "read_file", "table", "with_deps"]

"""`trame-bot`: the operator's command line. Errors are one line on stderr and a non-zero exit.

The commands' modules are imported when a command runs (`app.COMMANDS`), so that each command
loads only what it uses."""

from __future__ import annotations

from trame_bot.cli.app import cli, main

__all__ = ["cli", "main"]

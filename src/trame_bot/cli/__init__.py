"""`trame-bot`: the operator's command line. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

# Importing the command modules attaches their commands to the group.
from trame_bot.cli import admin, alerts, audit, governance, keys, manifest, report, server
from trame_bot.cli.app import cli, main

__all__ = [
    "admin",
    "alerts",
    "audit",
    "cli",
    "governance",
    "keys",
    "main",
    "manifest",
    "report",
    "server",
]

"""`trame-bot keys`: the keys that seal Slack tokens at rest (`TRAME_ENCRYPTION_KEY`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from trame_bot.cli.app import cli, with_deps
from trame_bot.services import installations
from trame_bot.vault import KEY_VARIABLE, new_key

if TYPE_CHECKING:
    from trame_bot.bootstrap import Deps


@cli.group()
def keys() -> None:
    """Encryption keys for stored Slack tokens."""


@keys.command("new")
def keys_new() -> None:
    """Print a fresh key. To replace a key, put the new one first in TRAME_ENCRYPTION_KEY
    (the old one after it), restart, then run `trame-bot keys rotate`."""
    click.echo(new_key())


@keys.command("rotate")
@with_deps
async def keys_rotate(deps: Deps) -> None:
    """Seal every stored token again under the newest key (the first in TRAME_ENCRYPTION_KEY);
    safe to repeat. Afterwards the older keys can be removed."""
    changed = await installations.reseal_tokens(deps.ctx)
    if changed:
        noun = "installation" if changed == 1 else "installations"
        click.echo(f"{changed} {noun} re-sealed under the newest key of {KEY_VARIABLE}")
    else:
        click.echo(f"every stored token is already sealed under the newest key of {KEY_VARIABLE}")

"""`trame-bot manifest`: the Slack app manifest with this deployment's URLs."""

from __future__ import annotations

from importlib.resources import files

import click

from trame_bot.cli.app import cli
from trame_bot.errors import InvalidInput

PLACEHOLDER = "https://trame-bot.example.com"


def manifest_text(url: str | None = None) -> str:
    text = (files("trame_bot") / "slack" / "manifest.yml").read_text(encoding="utf-8")
    if url is None:
        return text
    if not url.startswith("https://"):
        raise InvalidInput("Slack only calls https:// request URLs: give --url https://your-host")
    return text.replace(PLACEHOLDER, url.rstrip("/"))


@cli.command()
@click.option("--url", help="Your server's public base URL, e.g. https://bot.example.com.")
def manifest(url: str | None) -> None:
    """Print the Slack app manifest (YAML), request URLs pointing at --url."""
    click.echo(manifest_text(url), nl=False)

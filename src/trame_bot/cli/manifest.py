"""`trame-bot manifest`: the Slack app manifest with this deployment's URLs, for one workspace
or distributed by OAuth, over HTTP or Socket Mode."""

from __future__ import annotations

import click

from trame_bot.cli.app import cli
from trame_bot.slack.manifest import Variant, render


@cli.command()
@click.option(
    "--url",
    help="Your server's public base URL, e.g. https://bot.example.com. With --socket-mode it "
    "is needed only for --distributed's OAuth redirect URL.",
)
@click.option(
    "--distributed",
    is_flag=True,
    help="The app installed by OAuth into many Slack teams: redirect URL, token rotation, "
    "uninstall events.",
)
@click.option(
    "--socket-mode",
    is_flag=True,
    help="Slack's requests arrive over Socket Mode (SLACK_APP_TOKEN): no request URLs.",
)
def manifest(url: str | None, distributed: bool, socket_mode: bool) -> None:
    """Print the Slack app manifest (YAML), its URLs pointing at --url."""
    click.echo(render(Variant(distributed=distributed, socket_mode=socket_mode), url), nl=False)

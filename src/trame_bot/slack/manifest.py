"""The Slack app manifest in its four variants: `manifest.yml` is the one-workspace app over
HTTP, and `derive` turns it into the distributed and Socket Mode apps, so they cannot drift."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import yaml

from trame_bot.errors import InvalidInput

PLACEHOLDER = "https://trame-bot.example.com"
"""The base URL written in `manifest.yml`, replaced by the deployment's own."""
EVENTS_PATH = "/slack/events"
REDIRECT_PATH = "/slack/oauth_redirect"
"""Bolt's default OAuth callback, where the distributed app receives each install."""
LIFECYCLE_EVENTS = ("app_uninstalled", "tokens_revoked")
"""Tell a distributed app that a team removed it or revoked its token (they need no scope)."""


@dataclass(frozen=True)
class Variant:
    distributed: bool = False
    """Installed by OAuth into many Slack teams instead of one bot token."""
    socket_mode: bool = False
    """Slack's requests arrive over a websocket the app opens: no public request URL."""

    @property
    def flags(self) -> str:
        """The `trame-bot manifest` options that print this variant."""
        chosen = [("--distributed", self.distributed), ("--socket-mode", self.socket_mode)]
        return " ".join(flag for flag, on in chosen if on)


VARIANTS = (Variant(), Variant(distributed=True), Variant(socket_mode=True), Variant(True, True))


def base_text() -> str:
    return (files("trame_bot") / "slack" / "manifest.yml").read_text(encoding="utf-8")


def base() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(base_text())
    return loaded


def public_url(url: str | None) -> str:
    """The deployment's base URL without its trailing slash; Slack only calls https://."""
    if url is None:
        return PLACEHOLDER
    if not url.startswith("https://"):
        raise InvalidInput("Slack only calls https:// request URLs: give --url https://your-host")
    return url.rstrip("/")


def derive(manifest: dict[str, Any], variant: Variant, url: str = PLACEHOLDER) -> dict[str, Any]:
    """`manifest` (the base, untouched) turned into `variant`, its URLs under `url`."""
    derived = copy.deepcopy(manifest)
    features, settings = derived["features"], derived["settings"]
    events = settings["event_subscriptions"]
    if variant.socket_mode:
        # Slack refuses a Socket Mode app that still names request URLs, and would never use
        # them: commands, clicks, forms and events all come over the socket.
        for command in features["slash_commands"]:
            command.pop("url", None)
        settings["interactivity"].pop("request_url", None)
        events.pop("request_url", None)
        settings["socket_mode_enabled"] = True
    else:
        for command in features["slash_commands"]:
            command["url"] = url + EVENTS_PATH
        settings["interactivity"]["request_url"] = url + EVENTS_PATH
        events["request_url"] = url + EVENTS_PATH
    if variant.distributed:
        derived["oauth_config"]["redirect_urls"] = [url + REDIRECT_PATH]
        events["bot_events"] = [*events["bot_events"], *LIFECYCLE_EVENTS]
        # Slack's advice for distributed apps: bot tokens expire every 12 hours and are renewed
        # with the refresh token the installation keeps (sealed, like the token itself).
        # Once turned on in Slack's settings it cannot be turned off again.
        settings["token_rotation_enabled"] = True
        settings["org_deploy_enabled"] = False
    return derived


def render(variant: Variant, url: str | None = None) -> str:
    """The manifest as YAML. The one-workspace app over HTTP is `manifest.yml` itself, its
    comments kept; the other variants are derived from it and carry a header of their own."""
    base_url = public_url(url)
    if variant == Variant():
        return base_text().replace(PLACEHOLDER, base_url)
    derived = derive(base(), variant, base_url)
    header = [
        f"# Slack app manifest for trame-bot ({_describe(variant)}), printed by",
        f"# `trame-bot manifest {variant.flags}`. Create the app at https://api.slack.com/apps",
        '# → "From an app manifest".',
    ]
    if variant.socket_mode:
        header += [
            "# Socket Mode: add an app-level token with the connections:write scope (Basic",
            "# Information → App-Level Tokens) and start the server with SLACK_APP_TOKEN=xapp-….",
        ]
    body = yaml.safe_dump(derived, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(header) + "\n" + body


def _describe(variant: Variant) -> str:
    parts = ["distributed by OAuth" if variant.distributed else "one workspace"]
    if variant.socket_mode:
        parts.append("Socket Mode")
    return ", ".join(parts)

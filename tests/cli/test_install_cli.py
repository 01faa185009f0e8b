"""`trame-bot workspace install-link`, `keys new|rotate` and the Slack line of `workspace show`,
through the entry point on a real database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner, Result

from trame_bot.bootstrap import build
from trame_bot.cli import cli
from trame_bot.config import load_settings
from trame_bot.services import install_links, installations
from trame_bot.services.installations import SlackInstall
from trame_bot.vault import Vault, new_key

KEY = new_key()
TOKEN = "xoxb-cli-team-SECRET-0001"
Run = Callable[..., Result]


def environment(database_url: str, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **extra}


DISTRIBUTED = {
    "PUBLIC_URL": "https://bot.example.com",
    "TRAME_ENCRYPTION_KEY": KEY,
    "SLACK_CLIENT_ID": "1.2",
    "SLACK_CLIENT_SECRET": "client-secret-SECRET",
    "SLACK_SIGNING_SECRET": "signing-secret-SECRET",
}


@pytest.fixture
def run(database_url: str) -> Run:
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None, code: int = 0) -> Result:
        result = runner.invoke(cli, list(args), env=environment(database_url, **(env or {})))
        assert result.exit_code == code, (result.output, result.stderr)
        return result

    run_: Run = invoke
    run_("workspace", "create", "acme", "--name", "Acme", "--approvals-channel", "C0APPROVE")
    return run_


async def install_through(url: str, database_url: str, token: str = TOKEN) -> None:
    """What the OAuth callback does with the link, through the service."""
    deps = build(load_settings(environment(database_url, **DISTRIBUTED)))
    try:
        signed = parse_qs(urlsplit(url).query)["grant"][0]
        state = await install_links.start_install(deps.ctx, signed)
        await installations.complete_install(
            deps.ctx, state, SlackInstall("T0CLIENT", "Client Co", token, installed_by="U0ADM")
        )
    finally:
        await deps.close()


def test_install_link_names_what_is_missing(run: Run) -> None:
    without_url = {k: v for k, v in DISTRIBUTED.items() if k != "PUBLIC_URL"}
    result = run("workspace", "install-link", "acme", env=without_url, code=2)
    assert result.stderr.strip().splitlines() == [
        "error: PUBLIC_URL is not set: an install link needs this server's address"
    ]
    without_key = {"PUBLIC_URL": "https://bot.example.com"}
    result = run("workspace", "install-link", "acme", env=without_key, code=2)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "TRAME_ENCRYPTION_KEY is not set" in result.stderr
    result = run("workspace", "install-link", "acme", "--expires", "soon", env=DISTRIBUTED, code=1)
    assert "like 30m, 4h or 2d" in result.stderr
    result = run("workspace", "install-link", "nope", env=DISTRIBUTED, code=1)
    assert "no workspace 'nope'" in result.stderr


def setting(output: str, name: str) -> str | None:
    for line in output.splitlines():
        key, _, value = line.partition("  ")
        if key == name:
            return value.strip()
    return None


def test_a_printed_link_installs_and_show_tells_the_connection(run: Run, database_url: str) -> None:
    assert setting(run("workspace", "show", "acme", env=DISTRIBUTED).output, "slack") == (
        "not installed"
    )
    url = run("workspace", "install-link", "acme", "--expires", "2d", env=DISTRIBUTED).output
    assert url.startswith("https://bot.example.com/slack/install?grant=")
    assert len(url.strip().splitlines()) == 1
    asyncio.run(install_through(url.strip(), database_url))
    shown = run("workspace", "show", "acme", env=DISTRIBUTED).output
    assert setting(shown, "slack") == "Client Co (T0CLIENT): connected"
    assert setting(shown, "slack team") == "T0CLIENT"
    asyncio.run(disconnect(database_url))
    shown = run("workspace", "show", "acme", env=DISTRIBUTED).output
    line = setting(shown, "slack") or ""
    assert line.startswith("Client Co (T0CLIENT): disconnected since ")
    assert line.endswith(" UTC (app_uninstalled)")
    # One-workspace mode shows no Slack line: its one token is not an installation.
    assert setting(run("workspace", "show", "acme").output, "slack") is None


async def disconnect(database_url: str) -> None:
    deps = build(load_settings(environment(database_url, **DISTRIBUTED)))
    try:
        assert await installations.disconnect(deps.ctx, "T0CLIENT", "app_uninstalled")
    finally:
        await deps.close()


def test_keys_new_and_rotate(run: Run, database_url: str) -> None:
    fresh = run("keys", "new").output.strip()
    Vault([fresh]).seal("works")  # a valid Fernet key
    assert fresh != run("keys", "new").output.strip()

    url = run("workspace", "install-link", "acme", env=DISTRIBUTED).output.strip()
    asyncio.run(install_through(url, database_url))
    rotated = {**DISTRIBUTED, "TRAME_ENCRYPTION_KEY": f"{fresh},{KEY}"}
    assert run("keys", "rotate", env=rotated).output == (
        "1 installation re-sealed under the newest key of TRAME_ENCRYPTION_KEY\n"
    )
    assert "already sealed under the newest key" in run("keys", "rotate", env=rotated).output
    # The old key can go: the token opens with the new one alone.
    only_new = {**DISTRIBUTED, "TRAME_ENCRYPTION_KEY": fresh}
    assert asyncio.run(token_of(database_url, only_new)) == TOKEN
    result = run("keys", "rotate", code=2)
    assert "TRAME_ENCRYPTION_KEY is not set" in result.stderr


async def token_of(database_url: str, env: dict[str, str]) -> str | None:
    deps = build(load_settings(environment(database_url, **env)))
    try:
        bot = await installations.find_bot(deps.ctx, "T0CLIENT")
    finally:
        await deps.close()
    return None if bot is None else bot.bot_token

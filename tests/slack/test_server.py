"""Events, App Home, health endpoints, the manifest, and starting the server."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml
from click.testing import CliRunner

from tests import factories as f
from tests.harness import Bot, eventually
from trame_bot.cli import cli
from trame_bot.sandbox.block_kit import view_errors

ROOT = Path(__file__).parents[2]
# Slack's official app manifest schema (MIT, Slack Technologies), vendored beside this test.
SCHEMA = Path(__file__).parent / "manifest-schema" / "manifest.schema.1.0.0.json"


async def test_url_verification_echoes_the_challenge(bot: Bot) -> None:
    answer = await bot.send(bot.slack.url_verification("abc123"))
    assert answer.status == 200
    assert "abc123" in answer.body


async def test_app_home_shows_what_waits_for_me_and_survives_retries(bot: Bot, acme: str) -> None:
    await f.request(bot.deps, by=f.OWNER)
    event = bot.slack.app_home_opened(f.ADMIN)
    first = await bot.send(bot.slack.event(event, event_id="Ev1"))
    again = await bot.send(
        bot.slack.event(event, event_id="Ev1", retry_num=1, retry_reason="http_timeout")
    )
    assert (first.status, again.status) == (200, 200)

    async def published() -> bool:
        return f.ADMIN in bot.fake.home_views

    await eventually(published)
    view = bot.fake.home_views[f.ADMIN].payload
    assert view_errors(view) == []
    text = json.dumps(view)
    assert "Waiting for your approval (1)" in text
    assert "Invoice sync" in text


async def test_an_unknown_button_is_answered_not_404(bot: Bot, acme: str) -> None:
    request = bot.slack.block_action(
        user=f.MEMBER,
        action_id="legacy_button",
        value="x",
        block_id="b",
        channel=acme,
        message_ts="1.1",
    )
    assert (await bot.send(request)).status == 200
    told = await bot.told(f.MEMBER)
    assert "older version" in told[0]


async def test_health_and_readiness(bot: Bot, acme: str) -> None:
    base = bot.url.removesuffix("/slack/events")
    async with bot.session.get(base + "/healthz") as response:
        assert (response.status, await response.json()) == (200, {"status": "ok"})
    async with bot.session.get(base + "/readyz") as response:
        body = await response.json()
        assert response.status == 200
        assert body["status"] == "ready"


def test_manifest_is_valid_against_slacks_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    jsonschema.validate(manifest, schema)
    assert manifest["features"]["slash_commands"][0]["should_escape"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["settings"]["token_rotation_enabled"] is False


def test_manifest_command_fills_in_the_request_urls() -> None:
    result = CliRunner().invoke(cli, ["manifest", "--url", "https://bot.acme.dev/"])
    assert result.exit_code == 0
    manifest = yaml.safe_load(result.output)
    assert (
        manifest["settings"]["interactivity"]["request_url"] == "https://bot.acme.dev/slack/events"
    )
    assert manifest["features"]["slash_commands"][0]["url"] == "https://bot.acme.dev/slack/events"
    refused = CliRunner().invoke(cli, ["manifest", "--url", "http://insecure"])
    assert refused.exit_code == 1
    assert "https://" in refused.stderr


def test_serve_refuses_to_start_without_slack_credentials(database_url: str) -> None:
    for env, missing in (
        ({}, "SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET are"),
        ({"SLACK_SIGNING_SECRET": "s"}, "SLACK_BOT_TOKEN is"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET is"),
    ):
        result = CliRunner().invoke(
            cli,
            ["serve"],
            env={
                "DATABASE_URL": database_url,
                "SLACK_BOT_TOKEN": "",
                "SLACK_SIGNING_SECRET": "",
                **env,
            },
        )
        assert result.exit_code == 2
        assert result.stderr.startswith(f"error: {missing} not set")


def test_serve_refuses_a_mixed_or_incomplete_slack_mode_in_one_line(database_url: str) -> None:
    blank = {"SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": "", "SLACK_CLIENT_ID": ""}
    for env, expected in (
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_CLIENT_ID": "1.2", "SLACK_SIGNING_SECRET": "s"},
            "error: SLACK_BOT_TOKEN and SLACK_CLIENT_ID are both set",
        ),
        (
            {"SLACK_CLIENT_ID": "1.2", "SLACK_SIGNING_SECRET": "s"},
            "error: SLACK_CLIENT_SECRET, TRAME_ENCRYPTION_KEY, PUBLIC_URL are not set",
        ),
    ):
        result = CliRunner().invoke(
            cli, ["serve"], env={"DATABASE_URL": database_url, **blank, **env}
        )
        assert result.exit_code == 2
        assert result.stderr.startswith(expected)
        assert len(result.stderr.strip().splitlines()) == 1

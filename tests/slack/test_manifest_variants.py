"""Every variant `trame-bot manifest` prints (one workspace or distributed, HTTP or Socket
Mode) is valid against Slack's own schema and says what its mode needs, and nothing more."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from trame_bot.cli import cli
from trame_bot.slack.manifest import VARIANTS, Variant, base, derive

# Slack's official app manifest schema (MIT, Slack Technologies), vendored beside the tests.
SCHEMA = json.loads(
    (Path(__file__).parent / "manifest-schema" / "manifest.schema.1.0.0.json").read_text()
)
URL = "https://bot.acme.dev"


def printed(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["manifest", *args])
    assert result.exit_code == 0, result.output
    manifest: dict[str, Any] = yaml.safe_load(result.output)
    return manifest


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.flags or "one-workspace")
def test_every_variant_is_valid_against_slacks_schema(variant: Variant) -> None:
    manifest = printed("--url", URL + "/", *variant.flags.split())
    jsonschema.validate(manifest, SCHEMA)
    assert manifest == derive(base(), variant, URL)
    settings = manifest["settings"]
    command = manifest["features"]["slash_commands"][0]
    assert command["command"] == "/trame"
    assert command["should_escape"] is True
    assert manifest["oauth_config"]["scopes"] == base()["oauth_config"]["scopes"]
    assert settings["socket_mode_enabled"] is variant.socket_mode
    assert settings["token_rotation_enabled"] is variant.distributed
    assert settings["org_deploy_enabled"] is False
    assert settings["interactivity"]["is_enabled"] is True

    urls = [s for s in strings(manifest) if s.startswith(URL)]
    redirect = [f"{URL}/slack/oauth_redirect"] if variant.distributed else []
    requests = [] if variant.socket_mode else [f"{URL}/slack/events"] * 3
    assert sorted(urls) == sorted(redirect + requests)
    assert manifest["oauth_config"].get("redirect_urls", []) == redirect
    if variant.socket_mode:
        assert "url" not in command
        assert "request_url" not in settings["interactivity"]
        assert "request_url" not in settings["event_subscriptions"]
    else:
        assert command["url"] == settings["interactivity"]["request_url"] == requests[0]
        assert settings["event_subscriptions"]["request_url"] == requests[0]

    events = settings["event_subscriptions"]["bot_events"]
    lifecycle = ["app_uninstalled", "tokens_revoked"] if variant.distributed else []
    assert events == ["app_home_opened", *lifecycle]


def test_the_one_workspace_manifest_is_the_file_itself_with_its_comments() -> None:
    result = CliRunner().invoke(cli, ["manifest"])
    root = Path(__file__).parents[2] / "manifest.yml"
    assert result.output == root.read_text()
    assert "https://trame-bot.example.com/slack/events" in result.output


def test_socket_mode_needs_no_url_and_says_how_to_get_the_app_token() -> None:
    result = CliRunner().invoke(cli, ["manifest", "--socket-mode"])
    assert result.exit_code == 0
    assert "connections:write" in result.output
    assert "SLACK_APP_TOKEN" in result.output
    assert "https://trame-bot.example.com" not in result.output
    jsonschema.validate(yaml.safe_load(result.output), SCHEMA)


def test_derive_leaves_the_base_untouched() -> None:
    manifest = base()
    before = json.dumps(manifest)
    derive(manifest, Variant(distributed=True, socket_mode=True), URL)
    assert json.dumps(manifest) == before


def test_a_variant_url_must_be_https() -> None:
    refused = CliRunner().invoke(cli, ["manifest", "--distributed", "--url", "http://insecure"])
    assert refused.exit_code == 1
    assert "https://" in refused.stderr

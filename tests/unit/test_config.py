"""Settings from the environment: accepted forms, and one clear line for each bad value."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from trame_bot.config import Distributed, OneWorkspace, Settings, load_settings
from trame_bot.errors import ConfigError
from trame_bot.logs import REDACTED, SecretFilter


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "sqlite+aiosqlite:///trame-bot.db"),
        ("sqlite:////tmp/t.db", "sqlite+aiosqlite:////tmp/t.db"),
        ("sqlite+aiosqlite:///t.db", "sqlite+aiosqlite:///t.db"),
        ("postgres://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("postgresql+asyncpg://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("postgres://u:p@db/app?sslmode=require", "postgresql+asyncpg://u:p@db/app?ssl=require"),
    ],
)
def test_database_url_forms(given: str | None, expected: str) -> None:
    env = {} if given is None else {"DATABASE_URL": given}
    assert load_settings(env).database_url == expected


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"SLACK_API_URL": "slack.com/api"}, "SLACK_API_URL"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert caught.value.message.startswith(names)
    assert "\n" not in caught.value.message


def test_slack_api_url_gets_its_trailing_slash() -> None:
    assert (
        load_settings({"SLACK_API_URL": "http://127.0.0.1:9/api"}).slack_api_url
        == "http://127.0.0.1:9/api/"
    )


def test_slack_credentials_are_required_only_where_used() -> None:
    settings = load_settings({"SLACK_BOT_TOKEN": "xoxb-1"})
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET is not set"):
        settings.require_slack()
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN is not set"):
        load_settings({}).require_slack()


def test_repr_never_shows_secrets() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://app:dbpassword99@db/app",
        slack_bot_token="xoxb-very-secret",
        slack_signing_secret="signing-very-secret",
    )
    shown = repr(settings)
    for secret in ("dbpassword99", "xoxb-very-secret", "signing-very-secret"):
        assert secret not in shown


def test_log_filter_scrubs_configured_secrets() -> None:
    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "token %s leaked", ("xoxb-very-secret",), None
    )
    assert SecretFilter(["xoxb-very-secret", None, ""]).filter(record)
    assert record.getMessage() == f"token {REDACTED} leaked"


@pytest.mark.parametrize(
    "token", ["xoxb-1-2-abc", "xoxe.xoxb-1-abc", "xoxe-1-refresh", "xapp-1-A1-2-f00", "xoxp-9"]
)
def test_any_slack_token_is_scrubbed_even_one_not_configured(token: str) -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "sent with %s.", (token,), None)
    assert SecretFilter([]).filter(record)
    assert token not in record.getMessage()
    assert REDACTED in record.getMessage()


def test_a_sqlite_file_in_a_missing_folder_is_named_at_start(tmp_path: Path) -> None:
    missing = tmp_path / "not-made"
    with pytest.raises(ConfigError, match="folder that does not exist") as refused:
        load_settings({"DATABASE_URL": f"sqlite:///{missing}/t.db"})
    assert str(missing) in refused.value.message


# -- Slack modes ------------------------------------------------------------------------------

KEY = "aCLqhjzMWnPdE0r9rqgC5sSiT0oB6UZQ0kkhZ3Y9J3c="
DISTRIBUTED = {
    "SLACK_CLIENT_ID": "123.456",
    "SLACK_CLIENT_SECRET": "client-secret",
    "SLACK_SIGNING_SECRET": "signing-secret",
    "TRAME_ENCRYPTION_KEY": KEY,
    "PUBLIC_URL": "https://bot.example.com/",
}


def test_one_workspace_is_the_default_mode() -> None:
    mode = load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}).slack_mode()
    assert mode == OneWorkspace("xoxb-1", "s")


def test_distributed_mode_takes_its_four_variables() -> None:
    mode = load_settings(DISTRIBUTED).slack_mode()
    assert isinstance(mode, Distributed)
    assert mode.public_url == "https://bot.example.com"
    assert mode.authorize_url == "https://slack.com/oauth/v2/authorize"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {**DISTRIBUTED, "SLACK_BOT_TOKEN": "xoxb-1"},
            "SLACK_BOT_TOKEN and SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are both set",
        ),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_CLIENT_ID": "1.2"}, "are both set"),
        ({k: v for k, v in DISTRIBUTED.items() if k != "PUBLIC_URL"}, "PUBLIC_URL is not set"),
        (
            {"SLACK_CLIENT_ID": "1.2", "SLACK_SIGNING_SECRET": "s"},
            "SLACK_CLIENT_SECRET, TRAME_ENCRYPTION_KEY, PUBLIC_URL are not set",
        ),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET is not set"),
        ({}, "SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET are not set"),
    ],
)
def test_a_mixed_or_incomplete_mode_is_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env).slack_mode()
    assert message in refused.value.message
    assert "\n" not in refused.value.message


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"SLACK_APP_TOKEN": "xoxb-not-an-app-token"}, "SLACK_APP_TOKEN"),
        ({"PUBLIC_URL": "bot.example.com"}, "PUBLIC_URL"),
        ({"SLACK_AUTHORIZE_URL": "ftp://x"}, "SLACK_AUTHORIZE_URL"),
    ],
)
def test_bad_mode_values_name_their_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env)


def test_every_secret_is_known_to_the_log_filter() -> None:
    settings = load_settings({**DISTRIBUTED, "SLACK_APP_TOKEN": "xapp-1-A-2-abc"})
    assert set(settings.secrets) == {"client-secret", "signing-secret", KEY, "xapp-1-A-2-abc"}
    assert "client-secret" not in repr(settings)

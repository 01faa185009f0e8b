"""Settings from the environment: accepted forms, and one clear line for each bad value."""

from __future__ import annotations

import logging

import pytest

from trame_bot.config import Settings, load_settings
from trame_bot.errors import ConfigError
from trame_bot.logs import REDACTED, SecretFilter


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "sqlite+aiosqlite:///trame-bot.db"),
        ("sqlite:////var/data/t.db", "sqlite+aiosqlite:////var/data/t.db"),
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

"""Settings from the environment (docs/operations.md). The only module that reads `os.environ`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from trame_bot.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///trame-bot.db"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Settings:
    database_url: str
    """SQLAlchemy async URL, driver already chosen (aiosqlite or asyncpg)."""
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    port: int = 3000
    log_level: str = "INFO"
    log_format: str = "text"
    slack_timeout: int = 10
    """Seconds a Slack Web API call may take (not an environment setting; tests shorten it)."""

    def __repr__(self) -> str:
        # Secrets never reach a log line, even through a debug print of the settings.
        return (
            f"Settings(database_url={redact_url(self.database_url)!r}, "
            f"slack_api_url={self.slack_api_url!r}, port={self.port}, "
            f"log_level={self.log_level!r}, log_format={self.log_format!r})"
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def require_slack(self) -> tuple[str, str]:
        """The bot token and signing secret, or a ConfigError naming the missing one."""
        for name, value in (
            ("SLACK_BOT_TOKEN", self.slack_bot_token),
            ("SLACK_SIGNING_SECRET", self.slack_signing_secret),
        ):
            if not value:
                raise ConfigError(f"{name} is not set: the Slack app cannot start without it")
        return self.slack_bot_token or "", self.slack_signing_secret or ""


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    if env.get("SLACK_CLIENT_ID") and env.get("SLACK_CLIENT_SECRET"):
        # Bolt would silently switch to OAuth with a file store and ignore the bot token.
        raise ConfigError(
            "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set: trame-bot uses one bot token "
            "(SLACK_BOT_TOKEN); unset them"
        )
    return Settings(
        database_url=async_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
        slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
        slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
        slack_api_url=_slack_api_url(env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL),
        port=_port(env.get("PORT") or "3000"),
        log_level=_choice("LOG_LEVEL", (env.get("LOG_LEVEL") or "INFO").upper(), LOG_LEVELS),
        log_format=_choice("LOG_FORMAT", (env.get("LOG_FORMAT") or "text").lower(), LOG_FORMATS),
    )


def async_database_url(url: str) -> str:
    """Accept the URL forms hosting platforms hand out and pick the async driver."""
    scheme, _, rest = url.partition("://")
    if not rest:
        raise ConfigError("DATABASE_URL is not a URL: expected sqlite:///path or postgresql://…")
    base = scheme.split("+", 1)[0].lower()
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if base in ("postgres", "postgresql"):
        return _asyncpg_url(f"postgresql+asyncpg://{rest}")
    raise ConfigError(
        f"DATABASE_URL scheme {scheme!r} is not supported: use sqlite:/// or postgresql://"
    )


def _asyncpg_url(url: str) -> str:
    # libpq's `sslmode` (as Heroku and others add it) is spelled `ssl` by asyncpg.
    parts = urlsplit(url)
    query = [("ssl" if k == "sslmode" else k, v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _slack_api_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigError("SLACK_API_URL must start with http:// or https://")
    # slack_sdk joins method names onto the base URL; without the slash `/api` is lost.
    return url if url.endswith("/") else url + "/"


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"PORT must be a number, not {raw!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"PORT must be between 1 and 65535, not {port}")
    return port


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value

"""Settings from the environment (docs/operations.md). The only module that reads `os.environ`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from trame_bot.errors import ConfigError
from trame_bot.vault import KEY_VARIABLE, parse_keys

DEFAULT_DATABASE_URL = "sqlite:///trame-bot.db"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_SLACK_AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class OneWorkspace:
    """One Slack team, one bot token (`SLACK_BOT_TOKEN`): the default mode."""

    bot_token: str
    signing_secret: str


@dataclass(frozen=True)
class Distributed:
    """Installed by OAuth into any number of Slack teams, each through an operator's
    install link; tokens live in the database, sealed with `TRAME_ENCRYPTION_KEY`."""

    client_id: str
    client_secret: str
    signing_secret: str
    public_url: str
    authorize_url: str


SlackMode = OneWorkspace | Distributed
ONE_WORKSPACE_NEEDS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
DISTRIBUTED_NEEDS = (
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    KEY_VARIABLE,
    "PUBLIC_URL",
    "SLACK_SIGNING_SECRET",
)


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
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    slack_app_token: str | None = None
    """`xapp-…`: Slack's requests arrive over Socket Mode instead of HTTP."""
    slack_authorize_url: str = DEFAULT_SLACK_AUTHORIZE_URL
    encryption_keys: tuple[str, ...] = ()
    public_url: str | None = None

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

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every configured secret, for the log filter that scrubs them."""
        values = (
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_client_secret,
            self.slack_app_token,
            *self.encryption_keys,
        )
        return tuple(value for value in values if value)

    def slack_mode(self) -> SlackMode:
        """The mode the environment chose, or one ConfigError naming what is mixed or missing."""
        given = {
            "SLACK_BOT_TOKEN": self.slack_bot_token,
            "SLACK_CLIENT_ID": self.slack_client_id,
            "SLACK_CLIENT_SECRET": self.slack_client_secret,
            KEY_VARIABLE: ",".join(self.encryption_keys),
            "PUBLIC_URL": self.public_url,
            "SLACK_SIGNING_SECRET": self.slack_signing_secret,
        }
        oauth = [name for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET") if given[name]]
        if self.slack_bot_token and oauth:
            raise ConfigError(
                f"SLACK_BOT_TOKEN and {' and '.join(oauth)} are both set: choose one workspace "
                "(SLACK_BOT_TOKEN) or distribution by OAuth (SLACK_CLIENT_ID, "
                f"SLACK_CLIENT_SECRET, {KEY_VARIABLE}, PUBLIC_URL), not both"
            )
        needed = DISTRIBUTED_NEEDS if oauth else ONE_WORKSPACE_NEEDS
        missing = [name for name in needed if not given[name]]
        if missing:
            mode = "distribution by OAuth" if oauth else "one workspace"
            one = len(missing) == 1
            raise ConfigError(
                f"{', '.join(missing)} {'is' if one else 'are'} not set: the Slack app "
                f"({mode}) cannot start without {'it' if one else 'them'}"
            )
        if not oauth:
            return OneWorkspace(self.slack_bot_token or "", self.slack_signing_secret or "")
        return Distributed(
            client_id=self.slack_client_id or "",
            client_secret=self.slack_client_secret or "",
            signing_secret=self.slack_signing_secret or "",
            public_url=self.public_url or "",
            authorize_url=self.slack_authorize_url,
        )

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
    app_token = env.get("SLACK_APP_TOKEN") or None
    if app_token is not None and not app_token.startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN must be an app-level token (xapp-…) for Socket Mode")
    public_url = env.get("PUBLIC_URL") or None
    if public_url is not None:
        public_url = _http_url("PUBLIC_URL", public_url).rstrip("/")
    return Settings(
        database_url=async_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
        slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
        slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
        slack_api_url=_slack_api_url(env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL),
        port=_port(env.get("PORT") or "3000"),
        log_level=_choice("LOG_LEVEL", (env.get("LOG_LEVEL") or "INFO").upper(), LOG_LEVELS),
        log_format=_choice("LOG_FORMAT", (env.get("LOG_FORMAT") or "text").lower(), LOG_FORMATS),
        slack_client_id=env.get("SLACK_CLIENT_ID") or None,
        slack_client_secret=env.get("SLACK_CLIENT_SECRET") or None,
        slack_app_token=app_token,
        slack_authorize_url=_http_url(
            "SLACK_AUTHORIZE_URL", env.get("SLACK_AUTHORIZE_URL") or DEFAULT_SLACK_AUTHORIZE_URL
        ),
        encryption_keys=parse_keys(env.get(KEY_VARIABLE)),
        public_url=public_url,
    )


def async_database_url(url: str) -> str:
    """Accept the URL forms hosting platforms hand out and pick the async driver."""
    scheme, _, rest = url.partition("://")
    if not rest:
        raise ConfigError("DATABASE_URL is not a URL: expected sqlite:///path or postgresql://…")
    base = scheme.split("+", 1)[0].lower()
    if base == "sqlite":
        _check_sqlite_folder(rest)
        return f"sqlite+aiosqlite://{rest}"
    if base in ("postgres", "postgresql"):
        return _asyncpg_url(f"postgresql+asyncpg://{rest}")
    raise ConfigError(
        f"DATABASE_URL scheme {scheme!r} is not supported: use sqlite:/// or postgresql://"
    )


def _check_sqlite_folder(rest: str) -> None:
    """SQLite creates the file but not its folder; left to the driver, a missing folder reads
    as "database unavailable, try again", which no waiting fixes."""
    path = rest[1:].split("?", 1)[0]  # sqlite:///relative, sqlite:////absolute
    if not path or path == ":memory:":
        return
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise ConfigError(
            f"DATABASE_URL points into a folder that does not exist ({folder}): "
            "create it, or point DATABASE_URL elsewhere"
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
    url = _http_url("SLACK_API_URL", url)
    # slack_sdk joins method names onto the base URL; without the slash `/api` is lost.
    return url if url.endswith("/") else url + "/"


def _http_url(name: str, url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must start with http:// or https://")
    return url


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

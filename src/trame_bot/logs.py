"""Logging: plain text or one JSON object per line, and secrets scrubbed from every record."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from trame_bot.config import Settings

REDACTED = "[redacted]"
SLACK_TOKEN = re.compile(r"\bx(?:ox[abeoprs]|app)-[A-Za-z0-9-]+")
"""Any Slack token (bot, user, refresh, app-level): each installed team's tokens live only in
the database, so they cannot be listed in advance like the configured secrets."""


class SecretFilter(logging.Filter):
    """Replaces known secret values, and anything shaped like a Slack token, wherever they
    appear in a formatted message or traceback."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse a cached exc_text: cache the scrubbed traceback.
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
        return True

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return SLACK_TOKEN.sub(REDACTED, text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("ref", "route", "status"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["error"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(settings.secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    quiet_libraries()


LIBRARIES = (
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
    "asyncio",
    "slack_sdk",
    "slack_bolt",
    "apscheduler",
    "alembic",
)


def quiet_libraries() -> None:
    """Drivers log every statement with its parameters (webhook secrets, API key hashes) at
    DEBUG: at LOG_LEVEL=DEBUG ours is the debug output that matters; theirs stays at warnings.
    APScheduler says "Running job" and "executed successfully" at INFO for every turn of every
    job; each job's own outcome line (trame_bot.jobs) says more in one line. Alembic says
    "Context impl SQLiteImpl" whenever the schema's revision is read, which every command does
    before it starts."""
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)

"""The one place Slack-facing errors become words: known errors as they are, anything else as
an apology with a reference id that is also in the log."""

from __future__ import annotations

import logging
import secrets

from trame_bot.errors import SchemaNotReady, TrameError, Unavailable
from trame_bot.slack.text import inert

log = logging.getLogger("trame_bot.slack")


def friendly(exc: BaseException) -> str:
    """Messages quote what people typed, so they are made inert before Slack reads them."""
    if isinstance(exc, SchemaNotReady):  # waiting will not help: no hourglass
        return f"⚠️ {inert(exc.message)}"
    if isinstance(exc, Unavailable):
        return f"⏳ {inert(exc.message)}"
    if isinstance(exc, TrameError):
        return f"⚠️ {inert(exc.message)}"
    ref = secrets.token_hex(4)
    log.error("unexpected error in a Slack request (ref %s)", ref, exc_info=exc)
    return f"😬 Something went wrong on our side. Nothing was changed. Reference `{ref}` if you report it."

"""Text for Slack: escaping user-supplied strings, mentions, truncation, dates."""

from __future__ import annotations

import re
from datetime import datetime

from trame_bot.domain.values import CONTROL

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
ELLIPSIS = "…"


def escape(text: str) -> str:
    """Make user text inert in mrkdwn: no `<!channel>`, `<@U…>` or `<url|label>` can form.

    `&`, `<` and `>` are escaped as Slack documents. Mrkdwn has no escape for `*` and
    `` ` ``, so they become look-alikes (∗, ˋ): a name cannot bold or code-span the rest
    of a card. `_` and `~` stay: snake_case names are common and harmless.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("*", "∗").replace("`", "ˋ")


def inert(text: str) -> str:
    """Only what could form a mention or a link is escaped: for our own messages that quote
    what someone typed, where backticks and bold are ours to keep."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clean(text: str) -> str:
    """Typed text without control characters (a NUL cannot even be stored by PostgreSQL)."""
    return CONTROL.sub("", text)


def code(text: str) -> str:
    """Inline code for identifiers (tools, keys); backticks inside cannot close it."""
    return "`" + escape(text) + "`"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def user(name: str | None) -> str:
    """A mention for a Slack user id, the escaped name otherwise (engine names, `cli`)."""
    if not name:
        return "someone"
    if _USER_ID.match(name):
        return f"<@{name}>"
    prefix, _, rest = name.partition(":")
    if prefix == "slack" and _USER_ID.match(rest):
        return f"<@{rest}>"
    return escape(name)


def when(moment: datetime) -> str:
    """A date Slack shows in each reader's own time zone, with a UTC fallback."""
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def short_fingerprint(fingerprint: str) -> str:
    return fingerprint[:12]

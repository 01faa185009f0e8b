"""Slack's mrkdwn as safe HTML, minimally: *bold*, _italic_, ~strike~, `code`, > quotes,
mentions, channels, dates and links. Every character of the input ends up HTML-escaped; the
only tags in the output are the ones written here.

Slack's own escaping is undone first (``&amp;``, ``&lt;``, ``&gt;`` are the only entities
mrkdwn has), so text the bot escaped for Slack reads here as it reads in Slack.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

_TOKEN = re.compile(r"<([^<>\n]*)>")
# Placeholders for rendered pieces; these private-use characters are removed from the input.
_OPEN, _CLOSE = "\ue000", "\ue001"
_PLACEHOLDER = re.compile(f"{_OPEN}(\\d+){_CLOSE}")
_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
_SAFE_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class Names:
    """Display names for the ids mentions carry: ``<@U…>`` becomes ``@name``."""

    users: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)


def plain(text: str) -> str:
    """plain_text as HTML: escaped, line breaks kept."""
    return html.escape(text).replace("\n", "<br>")


def mrkdwn(text: str, names: Names = Names()) -> str:
    """mrkdwn as HTML; lines starting with ``>`` are quotes, as in Slack."""
    text = text.replace(_OPEN, "").replace(_CLOSE, "")
    out: list[str] = []
    quote: list[str] = []
    for line in text.split("\n"):
        if line.startswith(">"):
            quote.append(_line(line[1:], names))
            continue
        if quote:
            out.append(f"<blockquote>{'<br>'.join(quote)}</blockquote>")
            quote = []
        out.append(_line(line, names) + "<br>")
    if quote:
        out.append(f"<blockquote>{'<br>'.join(quote)}</blockquote>")
    return "".join(out).removesuffix("<br>")


def _line(text: str, names: Names) -> str:
    pieces: list[str] = []

    def keep(rendered: str) -> str:
        pieces.append(rendered)
        return f"{_OPEN}{len(pieces) - 1}{_CLOSE}"

    # Angle tokens first (on the raw text: only real brackets delimit them), then code spans,
    # whose content is not formatted further, then the emphasis marks on what is left.
    text = _TOKEN.sub(lambda m: keep(_token(m.group(1), names)), text)
    text = _escape(text)
    text = _CODE.sub(lambda m: keep(f"<code>{_restore(m.group(1), pieces)}</code>"), text)
    for pattern, tag in ((_BOLD, "strong"), (_ITALIC, "em"), (_STRIKE, "s")):
        text = pattern.sub(_wrap(tag), text)
    return _restore(text, pieces)


def _wrap(tag: str) -> Callable[[re.Match[str]], str]:
    return lambda m: f"<{tag}>{m.group(1)}</{tag}>"


def _restore(text: str, pieces: list[str]) -> str:
    # Pieces may hold placeholders of earlier pieces (a mention inside a code span).
    while _PLACEHOLDER.search(text):
        text = _PLACEHOLDER.sub(lambda m: pieces[int(m.group(1))], text)
    return text


def _escape(text: str) -> str:
    """Slack's entities undone, then everything escaped for HTML."""
    return html.escape(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def _token(inner: str, names: Names) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        user = target[1:]
        return _mention("@" + (names.users.get(user) or label or user))
    if target.startswith("#"):
        channel = target[1:]
        return _mention("#" + (names.channels.get(channel) or label or channel))
    if target.startswith("!date^"):
        return _escape(label or target.split("^")[1])
    if target.startswith("!subteam^"):
        return _mention(label or "@team")
    if target.startswith("!"):
        return _mention("@" + (label or target[1:]))
    if target.lower().startswith(_SAFE_SCHEMES):
        href = html.escape(target.replace("&amp;", "&"), quote=True)
        text = _escape(label or target)
        return f'<a href="{href}" rel="noopener noreferrer" target="_blank">{text}</a>'
    # Anything else (javascript:, mailto:, data:…) is shown as text, never as a link.
    return _escape(label or target)


def _mention(text: str) -> str:
    return f'<span class="mention">{_escape(text)}</span>'

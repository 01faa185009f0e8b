"""Block Kit as HTML for the sandbox page: messages, modals and Home tabs.

Pure functions over the JSON the bot sent. All text is escaped (``mrkdwn.plain`` and
``mrkdwn.mrkdwn``); attribute values go through ``_attr``. Interactive elements carry what the
page needs to send the interaction back as Slack would: ``data-block-id``, ``data-action-id``,
``data-value``; the message or view around them carries the channel and ts, or the view id.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from trame_bot.sandbox.fake_slack import Message, StoredFile
from trame_bot.sandbox.mrkdwn import Names, mrkdwn, plain

Json = dict[str, Any]


@dataclass(frozen=True)
class Form:
    """What a modal's inputs hold and the errors the bot answered, by block id."""

    values: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)


def _attr(value: object) -> str:
    return html.escape(str(value), quote=True)


def text(obj: Any, names: Names) -> str:
    """A text object (plain_text or mrkdwn); anything else renders as nothing."""
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return ""
    if obj.get("type") == "mrkdwn":
        return mrkdwn(obj["text"], names)
    return plain(obj["text"])


# ---- blocks --------------------------------------------------------------------------------


def blocks(items: Any, names: Names, form: Form | None = None) -> str:
    if not isinstance(items, list):
        return ""
    return "".join(block(item, names, form, index) for index, item in enumerate(items))


def block(item: Any, names: Names, form: Form | None = None, index: int = 0) -> str:
    if not isinstance(item, dict):
        return ""
    kind = str(item.get("type"))
    draw = _BLOCKS.get(kind)
    if draw is None:
        return f'<div class="bk-unsupported">[{_attr(kind)} block]</div>'
    return draw(item, names, form or Form(), index)


def _header(item: Json, names: Names, _form: Form, _index: int) -> str:
    return f'<h3 class="bk-header">{text(item.get("text"), names)}</h3>'


def _section(item: Json, names: Names, _form: Form, _index: int) -> str:
    parts = []
    if "text" in item:
        parts.append(f'<div class="bk-text">{text(item["text"], names)}</div>')
    fields = item.get("fields")
    if isinstance(fields, list) and fields:
        cells = "".join(f'<div class="bk-field">{text(f, names)}</div>' for f in fields)
        parts.append(f'<div class="bk-fields">{cells}</div>')
    accessory = item.get("accessory")
    side = (
        f'<div class="bk-accessory">{element(accessory, names, item.get("block_id"))}</div>'
        if isinstance(accessory, dict)
        else ""
    )
    return (
        f'<section class="bk-section"><div class="bk-main">{"".join(parts)}</div>{side}</section>'
    )


def _context(item: Json, names: Names, _form: Form, _index: int) -> str:
    cells = []
    for part in item.get("elements") or []:
        if isinstance(part, dict) and part.get("type") == "image":
            cells.append(
                f'<span class="bk-image-alt">[{_attr(part.get("alt_text", "image"))}]</span>'
            )
        else:
            cells.append(f"<span>{text(part, names)}</span>")
    return f'<div class="bk-context">{"".join(cells)}</div>'


def _divider(_item: Json, _names: Names, _form: Form, _index: int) -> str:
    return '<hr class="bk-divider">'


def _actions(item: Json, names: Names, _form: Form, _index: int) -> str:
    block_id = item.get("block_id")
    inner = "".join(element(e, names, block_id) for e in item.get("elements") or [])
    return f'<div class="bk-actions">{inner}</div>'


def _image(item: Json, names: Names, _form: Form, _index: int) -> str:
    title = text(item.get("title"), names)
    alt = _attr(item.get("alt_text", "image"))
    return f'<figure class="bk-image">[image: {alt}]<figcaption>{title}</figcaption></figure>'


def _rich_text(item: Json, _names: Names, _form: Form, _index: int) -> str:
    words: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                words.append(node["text"])
            for child in node.get("elements") or []:
                walk(child)

    walk(item)
    return f'<div class="bk-text">{plain("".join(words))}</div>'


def _input(item: Json, names: Names, form: Form, index: int) -> str:
    block_id = str(item.get("block_id") or f"input-{index}")
    label = text(item.get("label"), names)
    optional = ' <span class="bk-optional">(optional)</span>' if item.get("optional") else ""
    hint = item.get("hint")
    hint_html = f'<div class="bk-hint">{text(hint, names)}</div>' if hint else ""
    error = form.errors.get(block_id)
    error_html = f'<div class="bk-error" role="alert">{plain(error)}</div>' if error else ""
    control = _control(item.get("element"), block_id, form.values.get(block_id), names)
    css = "bk-input has-error" if error else "bk-input"
    return (
        f'<div class="{css}" data-block-id="{_attr(block_id)}">'
        f'<label class="bk-label">{label}{optional}</label>'
        f"{control}{hint_html}{error_html}</div>"
    )


_Draw = Callable[[Json, Names, Form, int], str]
_BLOCKS: dict[str, _Draw] = {
    "header": _header,
    "section": _section,
    "context": _context,
    "divider": _divider,
    "actions": _actions,
    "image": _image,
    "rich_text": _rich_text,
    "input": _input,
}


# ---- elements ------------------------------------------------------------------------------


def element(item: Any, names: Names, block_id: Any = None) -> str:
    """An interactive element of a section or an actions block."""
    if not isinstance(item, dict):
        return ""
    if item.get("type") == "button":
        return button(item, names, block_id)
    if item.get("type") == "image":
        return f'<span class="bk-image-alt">[{_attr(item.get("alt_text", "image"))}]</span>'
    return f'<span class="bk-unsupported">[{_attr(item.get("type"))}]</span>'


def button(item: Json, names: Names, block_id: Any = None) -> str:
    label = text(item.get("text"), names)
    style = item.get("style")
    css = "bk-button" + (f" bk-{style}" if style in ("primary", "danger") else "")
    url = item.get("url")
    if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
        return (
            f'<a class="{css}" href="{_attr(url)}" rel="noopener noreferrer" '
            f'target="_blank">{label}</a>'
        )
    data = (
        f'data-block-id="{_attr(block_id or "")}" '
        f'data-action-id="{_attr(item.get("action_id", ""))}" '
        f'data-value="{_attr(item.get("value", ""))}"'
    )
    dialog = confirm(item.get("confirm"), names)
    return (
        f'<span class="bk-button-wrap"><button type="button" class="{css}" {data}>{label}'
        f"</button>{dialog}</span>"
    )


def confirm(dialog: Any, names: Names) -> str:
    """A confirm dialog, hidden until the page shows it for its button."""
    if not isinstance(dialog, dict):
        return ""
    yes_css = "bk-button bk-danger" if dialog.get("style") == "danger" else "bk-button bk-primary"
    return (
        '<div class="bk-confirm" hidden>'
        f'<h3 class="bk-confirm-title">{text(dialog.get("title"), names)}</h3>'
        f'<div class="bk-confirm-text">{text(dialog.get("text"), names)}</div>'
        '<div class="bk-confirm-buttons">'
        f'<button type="button" class="bk-button bk-confirm-no">{text(dialog.get("deny"), names)}</button>'
        f'<button type="button" class="{yes_css} bk-confirm-yes">{text(dialog.get("confirm"), names)}</button>'
        "</div></div>"
    )


def _control(item: Any, block_id: str, value: str | None, names: Names) -> str:
    if not isinstance(item, dict):
        return ""
    kind = item.get("type")
    name = f'name="{_attr(block_id)}" data-action-id="{_attr(item.get("action_id", ""))}"'
    placeholder = item.get("placeholder")
    hint = plain(placeholder["text"]) if isinstance(placeholder, dict) else ""
    if kind == "plain_text_input":
        limit = item.get("max_length")
        maxlength = f' maxlength="{int(limit)}"' if isinstance(limit, int) else ""
        current = value if value is not None else str(item.get("initial_value") or "")
        if item.get("multiline"):
            return (
                f'<textarea class="bk-textarea" {name} rows="4"{maxlength} '
                f'placeholder="{hint}">{html.escape(current)}</textarea>'
            )
        return (
            f'<input class="bk-textinput" type="text" {name}{maxlength} '
            f'placeholder="{hint}" value="{_attr(current)}">'
        )
    if kind == "static_select":
        initial = item.get("initial_option")
        chosen = value if value is not None else (initial or {}).get("value")
        options = [f'<option value="">{hint or "Choose…"}</option>']
        for option in _options(item):
            picked = " selected" if option.get("value") == chosen else ""
            options.append(
                f'<option value="{_attr(option.get("value", ""))}"{picked}>'
                f"{text(option.get('text'), names)}</option>"
            )
        return f'<select class="bk-select" {name}>{"".join(options)}</select>'
    return f'<div class="bk-unsupported">[{_attr(kind)} input]</div>'


def _options(item: Json) -> list[Json]:
    if isinstance(item.get("options"), list):
        return [o for o in item["options"] if isinstance(o, dict)]
    grouped: list[Json] = []
    for group in item.get("option_groups") or []:
        if isinstance(group, dict):
            grouped += [o for o in group.get("options") or [] if isinstance(o, dict)]
    return grouped


# ---- surfaces ------------------------------------------------------------------------------


def modal(view: Json, names: Names, view_id: str, form: Form | None = None) -> str:
    """A modal as a form; its inputs are named by block id, as the submission needs them."""
    submit = view.get("submit")
    close = text(view.get("close"), names) or "Cancel"
    submit_html = (
        f'<button type="submit" class="bk-button bk-primary bk-submit">{text(submit, names)}</button>'
        if submit
        else ""
    )
    return (
        f'<form class="bk-modal" data-view-id="{_attr(view_id)}" novalidate>'
        f'<header class="bk-modal-title">{text(view.get("title"), names)}</header>'
        f'<div class="bk-modal-body">{blocks(view.get("blocks"), names, form)}</div>'
        f'<footer class="bk-modal-buttons"><button type="button" class="bk-button bk-close">'
        f"{close}</button>{submit_html}</footer></form>"
    )


def home(view: Json, names: Names, view_id: str) -> str:
    return f'<div class="bk-home" data-view-id="{_attr(view_id)}">{blocks(view.get("blocks"), names)}</div>'


def file_link(file: StoredFile) -> str:
    """A shared file as a download link, served from the bytes the bot uploaded."""
    label = html.escape(file.title or file.name)
    if file.content is None:
        return f'<div class="file pending">📎 {label} <span class="size">(uploading…)</span></div>'
    return (
        f'<div class="file"><a href="/sandbox/files/{_attr(quote(file.id, safe=""))}" '
        f'download="{_attr(file.name)}">📎 {label}</a> <span class="size">'
        f"{html.escape(file.name)} · {len(file.content):,} bytes</span></div>"
    )


def clock(ts: str) -> str:
    """A message ts as the local time of day."""
    try:
        return datetime.fromtimestamp(float(ts)).strftime("%H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return ""


def message(item: Message, names: Names, replies: Sequence[Message] = ()) -> str:
    """A channel message: its blocks (or its text when it has none), files, and thread."""
    author = "trame-bot" if item.from_bot else names.users.get(item.user, item.user)
    app = ' <span class="app-badge">APP</span>' if item.from_bot else ""
    edited = ' <span class="edited">(edited)</span>' if item.edited else ""
    body = blocks(item.blocks, names) if item.blocks else mrkdwn(item.text, names)
    files = "".join(file_link(f) for f in item.files)
    thread = ""
    if replies:
        count = f"{len(replies)} repl{'y' if len(replies) == 1 else 'ies'}"
        inner = "".join(message(reply, names) for reply in replies)
        thread = f'<div class="thread"><div class="thread-count">{count}</div>{inner}</div>'
    return (
        f'<article class="msg" data-channel="{_attr(item.channel)}" data-ts="{_attr(item.ts)}">'
        f'<div class="msg-head"><span class="author">{html.escape(author)}</span>{app} '
        f"<time>{clock(item.ts)}</time>{edited}</div>"
        f'<div class="msg-body">{body}</div>{files}{thread}</article>'
    )


def ephemeral(ts: str, text_: str, items: Any, names: Names, *, command: str | None = None) -> str:
    """A message only the chosen user sees: a command they typed, or the bot's answer."""
    if command is not None:
        body = f'<code class="typed">{html.escape(command)}</code>'
        author = "you"
    else:
        body = blocks(items, names) if items else mrkdwn(text_, names)
        author = "trame-bot"
    return (
        f'<article class="msg ephemeral" data-ts="{_attr(ts)}">'
        f'<div class="msg-head"><span class="author">{author}</span> <time>{clock(ts)}</time> '
        '<span class="only-you">Only visible to you</span></div>'
        f'<div class="msg-body">{body}</div></article>'
    )

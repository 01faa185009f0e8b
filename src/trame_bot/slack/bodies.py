"""Reads the bodies Slack sends over HTTP into the request Bolt dispatches.

Bolt's own reader guesses a body's shape from its text: a body that contains the word
"payload" anywhere is taken for an interactivity form, and when it has no `payload` field Bolt
reads it as empty. So `/trame pause payload-export`, or a channel, user or team named
"payload…", reached no listener and Slack showed the user a dispatch error. Slack's three
shapes are told apart here by their fields instead:

- a JSON body: Events API callbacks (and `url_verification`);
- a form whose `payload` field holds JSON and that is not a slash command: interactivity;
- any other form: slash commands and SSL checks, every field kept as sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from trame_bot import json_text

JSON = "application/json"


def bolt_request(
    raw: str, *, query: str, headers: Mapping[str, str | Sequence[str]]
) -> AsyncBoltRequest:
    """A Bolt request whose body was read by field, not by guess. The raw text is kept as
    sent: Bolt checks Slack's signature over it. Raises ValueError for a body of no shape
    Slack sends (JSON that is not an object), which the edge answers as a bad request."""
    # Built empty so that Bolt's guessing reader never runs on the real body.
    request = AsyncBoltRequest(body="", query=query, headers=dict(headers))
    request.raw_body = raw
    request.body = read_body(raw, request.content_type)
    request.context = build_async_context(AsyncBoltContext(), request.body)
    return request


def read_body(raw: str, content_type: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    if content_type == JSON or raw.startswith("{"):
        return _object(raw)
    form = dict(parse_qsl(raw, keep_blank_values=True))
    if "payload" in form and "command" not in form:
        return _object(form["payload"])
    return form


def _object(text: str) -> dict[str, Any]:
    try:
        value = json_text.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object, as every Slack JSON body is")
    return value

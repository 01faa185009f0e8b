"""Slack's Web API wire format for the fake: arguments merged as Slack merges them, refusals as
HTTP 200 ``{"ok": false, "error": ...}``, and the faults (429, 5xx, delays) tests inject."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from trame_bot.sandbox.block_kit import (
    MAX_BLOCK_TEXT_TOTAL,
    MAX_MESSAGE_TEXT,
    block_errors,
    block_text_length,
)
from trame_bot.sandbox.fake_records import Call, Json


class Refused(Exception):
    """Slack's answer ``{"ok": false, "error": ...}`` with its details."""

    def __init__(self, error: str, messages: Iterable[str] = ()) -> None:
        super().__init__(error)
        self.error = error
        self.messages = list(messages)

    def body(self) -> Json:
        body: Json = {"ok": False, "error": self.error}
        if self.messages:
            if self.error == "invalid_blocks":
                body["errors"] = self.messages
            body["response_metadata"] = {"messages": [f"[ERROR] {m}" for m in self.messages]}
        return body


@dataclass(frozen=True)
class Args:
    """A call's arguments, merged from query string, form and JSON body."""

    values: Json
    base_url: str
    """Where this fake is served (origin and mount prefix), for the URLs it hands out."""

    def has(self, key: str) -> bool:
        return key in self.values

    def text(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise Refused("invalid_arguments", [f"must be a string [json-pointer:/{key}]"])

    def structure(self, key: str) -> Any:
        """A JSON argument, which clients send either encoded as a string or as JSON."""
        value = self.values.get(key)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise Refused(
                    "invalid_arguments", [f"invalid JSON [json-pointer:/{key}]"]
                ) from None
        return value


async def read_args(request: web.Request) -> tuple[Json, str | None]:
    """Query string, form and JSON body merged; the token is taken out (it is a secret)."""
    values: Json = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise Refused("invalid_json") from None
            if not isinstance(body, dict):
                raise Refused("invalid_json")
            values.update(body)
        else:
            form = await request.post()
            values.update({k: v for k, v in form.items() if isinstance(v, str)})
    token = values.pop("token", None)
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = header.removeprefix("Bearer ")
    return values, token if isinstance(token, str) else None


def message_blocks(raw: Any) -> list[Json]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise Refused("invalid_blocks_format") from None
    if not isinstance(raw, list):
        raise Refused("invalid_blocks_format")
    errors = block_errors(raw)
    if errors:
        raise Refused("invalid_blocks", errors)
    if block_text_length(raw) > MAX_BLOCK_TEXT_TOTAL:
        raise Refused("msg_blocks_too_long")
    return raw


def content(args: Args, *, require: bool) -> tuple[str | None, list[Json]]:
    """A message's text and blocks, refused as Slack refuses them."""
    text = args.text("text")
    blocks = message_blocks(args.values["blocks"]) if args.has("blocks") else []
    if require and not text and not blocks and not args.values.get("attachments"):
        raise Refused("no_text")
    if text is not None and len(text) > MAX_MESSAGE_TEXT:
        raise Refused("msg_too_long")
    return text, blocks


def flag(value: Any) -> bool:
    return value is True or value in ("true", "1", 1)


# -- planned faults


@dataclass(kw_only=True)
class Planned:
    """Something that happens to the next ``remaining`` calls to ``method`` (None: any)."""

    method: str | None
    remaining: int


@dataclass(kw_only=True)
class Fault(Planned):
    status: int
    retry_after: int | None
    error: str | None


@dataclass(kw_only=True)
class Hang(Planned):
    seconds: float


_P = TypeVar("_P", bound=Planned)


def take(queue: list[_P], method: str) -> _P | None:
    for item in queue:
        if item.method in (None, method):
            item.remaining -= 1
            if item.remaining <= 0:
                queue.remove(item)
            return item
    return None


def answer(call: Call, refusal: Refused) -> web.Response:
    call.status, call.error = 200, refusal.error
    return web.json_response(refusal.body())


def fault_answer(call: Call, fault: Fault) -> web.Response:
    if fault.error is not None:
        return answer(call, Refused(fault.error))
    error = "ratelimited" if fault.status == 429 else "fatal_error"
    call.status, call.error = fault.status, error
    headers = {}
    if fault.status == 429 and fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    return web.json_response({"ok": False, "error": error}, status=fault.status, headers=headers)

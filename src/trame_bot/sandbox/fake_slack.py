"""A recording fake of the Slack Web API, served over HTTP, that refuses what Slack refuses.

The test suite talks to it through slack_sdk's real client, and the local sandbox page shows its
state. Errors follow Slack's wire format: HTTP 200 with ``{"ok": false, "error": ...}``, except
rate limits (429 + ``Retry-After``) and server errors (5xx), which only come from ``fail_next``.
Block Kit is checked against Slack's published limits (``block_errors``, ``view_errors``), then
against slack_sdk's own models as a second net.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from trame_bot.sandbox.block_kit import (
    MAX_BLOCK_TEXT_TOTAL,
    MAX_MESSAGE_TEXT,
    MAX_VIEW_BYTES,
    block_errors,
    block_text_length,
    view_errors,
)

Json = dict[str, Any]

TEAM_ID = "T0TEAM"
TEAM_NAME = "Test Team"
TEAM_DOMAIN = "test"
BOT_USER_ID = "U0BOT"
BOT_USER_NAME = "trame-bot"
BOT_ID = "B0BOT"
APP_ID = "A0APP"

RESPONSE_URL_USES = 5

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


# ---------------------------------------------------------------------------------------------
# Recorded state


@dataclass
class Call:
    """One Web API call as received; ``status`` stays None while the answer is pending."""

    method: str
    args: Json
    at: float
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


@dataclass(frozen=True)
class Revision:
    """A message's content before an update replaced it, and when it was replaced."""

    text: str
    blocks: list[Json]
    at: float


@dataclass
class StoredFile:
    id: str
    name: str
    length: int
    title: str | None = None
    content: bytes | None = None
    channel: str | None = None

    def to_payload(self) -> Json:
        return {
            "id": self.id,
            "name": self.name,
            "title": self.title or self.name,
            "size": len(self.content or b""),
        }


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[Json] = field(default_factory=list)
    user: str = BOT_USER_ID
    thread_ts: str | None = None
    files: list[StoredFile] = field(default_factory=list)
    edited: bool = False
    history: list[Revision] = field(default_factory=list)

    def to_payload(self) -> Json:
        """The message as Slack shows it in API answers and interaction payloads."""
        payload: Json = {
            "type": "message",
            "user": self.user,
            "text": self.text,
            "ts": self.ts,
            "team": TEAM_ID,
        }
        if self.user == BOT_USER_ID:
            payload["bot_id"] = BOT_ID
            payload["app_id"] = APP_ID
        if self.blocks:
            payload["blocks"] = copy.deepcopy(self.blocks)
        if self.thread_ts is not None:
            payload["thread_ts"] = self.thread_ts
        if self.files:
            payload["files"] = [f.to_payload() for f in self.files]
            payload["upload"] = True
        if self.edited and self.history:
            payload["edited"] = {"user": self.user, "ts": f"{self.history[-1].at:.6f}"}
        return payload


@dataclass(frozen=True)
class Ephemeral:
    channel: str
    user: str
    ts: str
    text: str
    blocks: list[Json]
    thread_ts: str | None = None


@dataclass
class View:
    """A modal or a Home tab; ``payload`` is the view as the app sent it."""

    id: str
    type: str
    payload: Json
    hash: str
    user: str | None = None
    root_view_id: str | None = None
    previous_view_id: str | None = None
    trigger_id: str | None = None

    def to_payload(self) -> Json:
        return {
            "callback_id": "",
            "private_metadata": "",
            "external_id": "",
            **copy.deepcopy(self.payload),
            "id": self.id,
            "team_id": TEAM_ID,
            "state": {"values": {}},
            "hash": self.hash,
            "root_view_id": self.root_view_id or self.id,
            "previous_view_id": self.previous_view_id,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        }


@dataclass(frozen=True)
class User:
    id: str
    name: str
    real_name: str
    tz: str = "Europe/Paris"
    is_bot: bool = False

    def to_payload(self) -> Json:
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": False,
            "tz": self.tz,
            "is_bot": self.is_bot,
            "profile": {"real_name": self.real_name, "display_name": self.name},
        }


@dataclass(frozen=True)
class Response:
    """A POST to a ``response_url``; ``error`` is what Slack answered when it refused it."""

    key: str
    body: Json
    at: float
    text: str | None = None
    blocks: list[Json] = field(default_factory=list)
    response_type: str = "ephemeral"
    replace_original: bool = False
    delete_original: bool = False
    error: str | None = None


@dataclass(frozen=True)
class _ResponseTarget:
    channel: str
    message_ts: str | None
    user: str | None


@dataclass(kw_only=True)
class _Planned:
    """Something that happens to the next ``remaining`` calls to ``method`` (None: any)."""

    method: str | None
    remaining: int


@dataclass(kw_only=True)
class _Fault(_Planned):
    status: int
    retry_after: int | None
    error: str | None


@dataclass(kw_only=True)
class _Hang(_Planned):
    seconds: float


class _Refused(Exception):
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


def _message_blocks(raw: Any) -> list[Json]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise _Refused("invalid_blocks_format") from None
    if not isinstance(raw, list):
        raise _Refused("invalid_blocks_format")
    errors = block_errors(raw)
    if errors:
        raise _Refused("invalid_blocks", errors)
    if block_text_length(raw) > MAX_BLOCK_TEXT_TOTAL:
        raise _Refused("msg_blocks_too_long")
    return raw


def _flag(value: Any) -> bool:
    return value is True or value in ("true", "1", 1)


# ---------------------------------------------------------------------------------------------
# The fake


@dataclass(frozen=True)
class _Args:
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
        raise _Refused("invalid_arguments", [f"must be a string [json-pointer:/{key}]"])

    def structure(self, key: str) -> Any:
        """A JSON argument, which clients send either encoded as a string or as JSON."""
        value = self.values.get(key)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise _Refused(
                    "invalid_arguments", [f"invalid JSON [json-pointer:/{key}]"]
                ) from None
        return value


_Method = Callable[[_Args], Json]


class FakeSlack:
    """Slack's Web API for one workspace and one bot token, with everything it was asked kept.

    State for tests and the sandbox page: ``calls``, ``messages(channel)``, ``ephemerals``,
    ``views`` (every view by id), ``home_views`` (by user), ``files`` and ``responses``.
    """

    def __init__(self, token: str, *, clock: Callable[[], float] = time.time) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, View] = {}
        self.home_views: dict[str, View] = {}
        self.files: dict[str, StoredFile] = {}
        self.responses: list[Response] = []
        self.users: dict[str, User] = {
            BOT_USER_ID: User(BOT_USER_ID, BOT_USER_NAME, "Trame Bot", is_bot=True)
        }
        self._clock = clock
        self._channels: dict[str, list[Message]] = {}
        self._faults: list[_Fault] = []
        self._hangs: list[_Hang] = []
        self._response_targets: dict[str, _ResponseTarget] = {}
        self._response_uses: dict[str, int] = {}
        self._serial = itertools.count(1)
        self._last_ts_micros = 0
        self._released = asyncio.Event()
        self._methods: dict[str, _Method] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "conversations.open": self._conversations_open,
            "users.info": self._users_info,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    # -- reading state

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def messages(self, channel: str) -> list[Message]:
        """The channel's messages and thread replies, oldest first."""
        return list(self._channels.get(channel, []))

    def message(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self._channels.get(channel, []) if m.ts == ts), None)

    def channels(self) -> list[str]:
        return sorted(self._channels)

    def user(self, user_id: str) -> User | None:
        """A known user, or one made up for any well-formed user id."""
        if user_id in self.users:
            return self.users[user_id]
        if _USER_ID.match(user_id):
            return User(user_id, user_id.lower(), f"User {user_id}")
        return None

    # -- arranging state

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        tz: str = "Europe/Paris",
        is_bot: bool = False,
    ) -> User:
        user = User(user_id, name or user_id.lower(), real_name or f"User {user_id}", tz, is_bot)
        self.users[user_id] = user
        return user

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str,
        blocks: list[Json] | None = None,
        thread_ts: str | None = None,
    ) -> Message:
        """A message someone else wrote (the bot cannot update it)."""
        message = Message(channel, self._next_ts(), text, blocks or [], user, thread_ts)
        self._channels.setdefault(channel, []).append(message)
        return message

    # -- fault injection

    def fail_next(
        self,
        method: str | None = None,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        error: str | None = None,
        count: int = 1,
    ) -> None:
        """The next ``count`` calls to ``method`` (any method when None) fail.

        With ``error``: HTTP 200 ``{"ok": false, "error": error}``; otherwise HTTP ``status``
        (429 carries ``Retry-After: retry_after`` unless that is None).
        """
        self._faults.append(
            _Fault(
                method=method, remaining=count, status=status, retry_after=retry_after, error=error
            )
        )

    def hang_next(self, method: str | None, seconds: float, count: int = 1) -> None:
        """Delay the answer to the next ``count`` calls to ``method`` by ``seconds``."""
        self._hangs.append(_Hang(method=method, remaining=count, seconds=seconds))

    def release_hangs(self) -> None:
        """Answer every delayed call now (so that a server can stop at once)."""
        self._released.set()

    # -- response_url

    def response_url(
        self,
        base_url: str,
        key: str,
        *,
        channel: str | None = None,
        message_ts: str | None = None,
        user: str | None = None,
    ) -> str:
        """A ``response_url`` served by this fake at ``base_url``.

        With ``channel`` (and ``message_ts`` for an interaction on a message) the answers
        also land where Slack would put them: replaced or deleted original, new message, or
        an ephemeral message for ``user``.
        """
        if channel is not None:
            self._response_targets[key] = _ResponseTarget(channel, message_ts, user)
        return f"{base_url.rstrip('/')}/respond/{key}"

    # -- HTTP

    def app(self) -> web.Application:
        self._released = asyncio.Event()  # hang again, on the loop that will serve this app
        app = web.Application()
        app.router.add_get("/api/{method}", self._handle_api)
        app.router.add_post("/api/{method}", self._handle_api)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        app.router.add_post("/respond/{key}", self._handle_respond)
        return app

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = Call(method, {}, self._clock())
        self.calls.append(call)
        try:
            values, token = await _read_args(request)
            call.args = values
        except _Refused as refusal:
            return _answer(call, refusal)
        await self._maybe_hang(method)
        fault = _take(self._faults, method)
        if fault is not None:
            return _fault_answer(call, fault)
        try:
            self._authenticate(token)
            handler = self._methods.get(method)
            if handler is None:
                raise _Refused("unknown_method")
            # Mounted under a prefix (the sandbox serves it at /sandbox/slack), keep the prefix.
            prefix = request.path[: request.path.rfind("/api/")]
            body = handler(_Args(values, f"{request.url.origin()}{prefix}"))
        except _Refused as refusal:
            return _answer(call, refusal)
        call.status = 200
        return web.json_response({"ok": True, **body})

    async def _handle_upload(self, request: web.Request) -> web.Response:
        stored = self.files.get(request.match_info["file_id"])
        if stored is None:
            return web.Response(status=404, text="file_not_found")
        stored.content = await request.read()
        return web.Response(text=f"OK - {len(stored.content)}")

    async def _handle_respond(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        uses = self._response_uses.get(key, 0)
        self._response_uses[key] = uses + 1
        response = Response(
            key=key,
            body=body,
            at=self._clock(),
            text=body.get("text") if isinstance(body.get("text"), str) else None,
            response_type=str(body.get("response_type") or "ephemeral"),
            replace_original=_flag(body.get("replace_original")),
            delete_original=_flag(body.get("delete_original")),
        )
        try:
            if uses >= RESPONSE_URL_USES:
                raise _Refused("used_url")
            if not response.delete_original:
                text, blocks = _content(_Args(body, ""), require=True)
                response = replace(response, text=text, blocks=blocks)
        except _Refused as refusal:
            self.responses.append(replace(response, error=refusal.error))
            status = 404 if refusal.error == "used_url" else 400
            return web.Response(status=status, text=refusal.error)
        self.responses.append(response)
        self._deliver(response)
        return web.Response(text="ok")

    # -- call plumbing

    async def _maybe_hang(self, method: str) -> None:
        hang = _take(self._hangs, method)
        if hang is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), hang.seconds)

    def _authenticate(self, token: str | None) -> None:
        if not token:
            raise _Refused("not_authed")
        if token != self.token:
            raise _Refused("invalid_auth")

    def _next_ts(self) -> str:
        """A message ts from the clock, unique and increasing even within one microsecond."""
        micros = max(int(self._clock() * 1_000_000), self._last_ts_micros + 100)
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._serial):08d}"

    def _channel(self, channel: str | None) -> str:
        """Channel ids as Slack takes them; a user id means the bot's DM with that user."""
        if channel and _USER_ID.match(channel):
            return _dm_channel(channel)
        if channel and _CHANNEL_ID.match(channel):
            return channel
        raise _Refused("channel_not_found")

    def _known_user(self, user_id: str | None) -> User:
        user = self.user(user_id) if user_id else None
        if user is None:
            raise _Refused("user_not_found")
        return user

    def _deliver(self, response: Response) -> None:
        target = self._response_targets.get(response.key)
        if target is None:
            return
        original = self.message(target.channel, target.message_ts) if target.message_ts else None
        if response.delete_original:
            if original is not None:
                self._channels[target.channel].remove(original)
        elif response.replace_original and original is not None:
            self._revise(original, response.text or "", response.blocks)
        elif response.response_type == "in_channel":
            message = Message(target.channel, self._next_ts(), response.text or "", response.blocks)
            self._channels.setdefault(target.channel, []).append(message)
        elif target.user is not None:
            self.ephemerals.append(
                Ephemeral(
                    target.channel,
                    target.user,
                    self._next_ts(),
                    response.text or "",
                    response.blocks,
                )
            )

    def _revise(self, message: Message, text: str, blocks: list[Json]) -> None:
        message.history.append(Revision(message.text, message.blocks, self._clock()))
        message.text, message.blocks, message.edited = text, blocks, True

    # -- methods

    def _auth_test(self, args: _Args) -> Json:
        del args
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "user": BOT_USER_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: _Args) -> Json:
        channel = self._channel(args.text("channel"))
        text, blocks = _content(args, require=True)
        message = Message(
            channel, self._next_ts(), text or "", blocks, thread_ts=args.text("thread_ts")
        )
        self._channels.setdefault(channel, []).append(message)
        return {"channel": channel, "ts": message.ts, "message": message.to_payload()}

    def _chat_update(self, args: _Args) -> Json:
        channel, ts = args.text("channel"), args.text("ts")
        message = self.message(channel, ts) if channel and ts else None
        if message is None:
            raise _Refused("message_not_found")
        if message.user != BOT_USER_ID:
            raise _Refused("cant_update_message")
        if not args.has("text") and not args.has("blocks"):
            raise _Refused("no_text")
        text, blocks = _content(args, require=False)
        # Slack keeps the old blocks when the update has none: the old buttons stay.
        new_text = text if args.has("text") else message.text
        new_blocks = blocks if args.has("blocks") else message.blocks
        if not new_text and not new_blocks:
            raise _Refused("no_text")
        self._revise(message, new_text or "", new_blocks)
        return {
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": message.to_payload(),
        }

    def _chat_post_ephemeral(self, args: _Args) -> Json:
        channel = self._channel(args.text("channel"))
        user = self._known_user(args.text("user"))
        text, blocks = _content(args, require=True)
        ephemeral = Ephemeral(
            channel, user.id, self._next_ts(), text or "", blocks, args.text("thread_ts")
        )
        self.ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.ts}

    def _views_open(self, args: _Args) -> Json:
        return {"view": self._open_view(args, pushed=False).to_payload()}

    def _views_push(self, args: _Args) -> Json:
        return {"view": self._open_view(args, pushed=True).to_payload()}

    def _open_view(self, args: _Args, *, pushed: bool) -> View:
        trigger_id = args.text("trigger_id") or args.text("interactivity_pointer")
        if not trigger_id:
            raise _Refused("invalid_trigger_id")
        payload = self._view_payload(args, kinds=("modal",))
        view_id = self._next_id("V")
        view = View(view_id, "modal", payload, self._next_hash(), trigger_id=trigger_id)
        if pushed:
            # Real Slack pushes onto the modal the trigger came from; the fake cannot tell which.
            view.previous_view_id = next(reversed(self.views), None)
        self.views[view_id] = view
        return view

    def _views_update(self, args: _Args) -> Json:
        view_id, external_id = args.text("view_id"), args.text("external_id")
        view = self.views.get(view_id) if view_id else None
        if view is None and external_id:
            view = next(
                (v for v in self.views.values() if v.payload.get("external_id") == external_id),
                None,
            )
        if view is None:
            raise _Refused("not_found")
        given_hash = args.text("hash")
        if given_hash and given_hash != view.hash:
            raise _Refused("hash_conflict")
        view.payload = self._view_payload(args, kinds=(view.type,))
        view.hash = self._next_hash()
        return {"view": view.to_payload()}

    def _views_publish(self, args: _Args) -> Json:
        user = self._known_user(args.text("user_id"))
        payload = self._view_payload(args, kinds=("home",))
        view = self.home_views.get(user.id)
        if view is None:
            view = View(self._next_id("V"), "home", payload, self._next_hash(), user=user.id)
            self.views[view.id] = view
            self.home_views[user.id] = view
        else:
            view.payload, view.hash = payload, self._next_hash()
        return {"view": view.to_payload()}

    def _view_payload(self, args: _Args, *, kinds: tuple[str, ...]) -> Json:
        if not args.has("view"):
            raise _Refused("invalid_arguments", ["missing required field [json-pointer:/view]"])
        view = args.structure("view")
        if not isinstance(view, dict):
            raise _Refused("invalid_arguments", ["must be an object [json-pointer:/view]"])
        if len(json.dumps(view).encode()) > MAX_VIEW_BYTES:
            raise _Refused("view_too_large")
        errors = view_errors(view)
        if view.get("type") not in kinds:
            errors.insert(0, f"must be one of {', '.join(kinds)} [json-pointer:/view/type]")
        if errors:
            raise _Refused("invalid_arguments", errors)
        return view

    def _next_hash(self) -> str:
        return f"{int(self._clock())}.{next(self._serial)}"

    def _conversations_open(self, args: _Args) -> Json:
        raw = args.values.get("users")
        users = raw if isinstance(raw, list) else (raw or "").split(",")
        ids = [u.strip() for u in users if isinstance(u, str) and u.strip()]
        if not ids:
            raise _Refused("users_list_not_supplied")
        for user_id in ids:
            self._known_user(user_id)
        if len(ids) == 1:
            channel_id = _dm_channel(ids[0])
        else:
            digest = hashlib.sha1(",".join(sorted(ids)).encode()).hexdigest()
            channel_id = "G" + digest[:10].upper()
        return {"no_op": False, "already_open": False, "channel": {"id": channel_id}}

    def _users_info(self, args: _Args) -> Json:
        return {"user": self._known_user(args.text("user")).to_payload()}

    def _files_get_upload_url(self, args: _Args) -> Json:
        filename, length = args.text("filename"), args.text("length")
        if not filename:
            raise _Refused("invalid_arguments", ["missing required field [json-pointer:/filename]"])
        if length is None or not length.isdigit() or int(length) < 1:
            raise _Refused(
                "invalid_arguments", ["must be a positive integer [json-pointer:/length]"]
            )
        stored = StoredFile(self._next_id("F"), filename, int(length))
        self.files[stored.id] = stored
        return {"upload_url": f"{args.base_url}/upload/{stored.id}", "file_id": stored.id}

    def _files_complete_upload(self, args: _Args) -> Json:
        items = args.structure("files")
        if not isinstance(items, list) or not items:
            raise _Refused("invalid_arguments", ["must be a non-empty array [json-pointer:/files]"])
        shared: list[StoredFile] = []
        for item in items:
            file_id = item.get("id") if isinstance(item, dict) else None
            stored = self.files.get(file_id) if isinstance(file_id, str) else None
            if stored is None or stored.content is None:
                raise _Refused("file_not_found")
            title = item.get("title")
            stored.title = title if isinstance(title, str) and title else stored.name
            shared.append(stored)
        channels = [args.text("channel_id")] if args.has("channel_id") else []
        channels += [c for c in (args.text("channels") or "").split(",") if c]
        comment = args.text("initial_comment") or ""
        if len(comment) > MAX_MESSAGE_TEXT:
            raise _Refused("msg_too_long")
        for raw_channel in channels:
            channel = self._channel(raw_channel)
            for stored in shared:
                stored.channel = channel
            message = Message(
                channel,
                self._next_ts(),
                comment,
                thread_ts=args.text("thread_ts"),
                files=list(shared),
            )
            self._channels.setdefault(channel, []).append(message)
        return {"files": [{"id": f.id, "title": f.title} for f in shared]}


def _dm_channel(user_id: str) -> str:
    return "D" + user_id[1:]


def _content(args: _Args, *, require: bool) -> tuple[str | None, list[Json]]:
    """A message's text and blocks, refused as Slack refuses them."""
    text = args.text("text")
    blocks = _message_blocks(args.values["blocks"]) if args.has("blocks") else []
    if require and not text and not blocks and not args.values.get("attachments"):
        raise _Refused("no_text")
    if text is not None and len(text) > MAX_MESSAGE_TEXT:
        raise _Refused("msg_too_long")
    return text, blocks


async def _read_args(request: web.Request) -> tuple[Json, str | None]:
    """Query string, form and JSON body merged; the token is taken out (it is a secret)."""
    values: Json = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _Refused("invalid_json") from None
            if not isinstance(body, dict):
                raise _Refused("invalid_json")
            values.update(body)
        else:
            form = await request.post()
            values.update({k: v for k, v in form.items() if isinstance(v, str)})
    token = values.pop("token", None)
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = header.removeprefix("Bearer ")
    return values, token if isinstance(token, str) else None


_P = TypeVar("_P", bound=_Planned)


def _take(queue: list[_P], method: str) -> _P | None:
    for item in queue:
        if item.method in (None, method):
            item.remaining -= 1
            if item.remaining <= 0:
                queue.remove(item)
            return item
    return None


def _answer(call: Call, refusal: _Refused) -> web.Response:
    call.status, call.error = 200, refusal.error
    return web.json_response(refusal.body())


def _fault_answer(call: Call, fault: _Fault) -> web.Response:
    if fault.error is not None:
        return _answer(call, _Refused(fault.error))
    error = "ratelimited" if fault.status == 429 else "fatal_error"
    call.status, call.error = fault.status, error
    headers = {}
    if fault.status == 429 and fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    return web.json_response({"ok": False, "error": error}, status=fault.status, headers=headers)


# ---------------------------------------------------------------------------------------------
# Serving on loopback


class RunningFake:
    """A FakeSlack listening on a local port; ``api_url`` is the client's ``base_url``."""

    def __init__(self, fake: FakeSlack, runner: web.AppRunner, url: str) -> None:
        self.fake = fake
        self.url = url
        self._runner = runner

    @property
    def api_url(self) -> str:
        return f"{self.url}api/"

    async def close(self) -> None:
        self.fake.release_hangs()
        await self._runner.cleanup()

    async def __aenter__(self) -> RunningFake:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def serve(fake: FakeSlack, host: str = "127.0.0.1", port: int = 0) -> RunningFake:
    """Serve ``fake`` on ``host``; port 0 picks a free port."""
    runner = web.AppRunner(fake.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
    except BaseException:
        await runner.cleanup()
        raise
    return RunningFake(fake, runner, f"http://{host}:{bound_port}/")

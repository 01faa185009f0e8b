"""The Web API methods the fake Slack serves, each as the calling token's team sees Slack.

A method gets the call's merged arguments and the team whose bot token made the call; it
answers the body of ``{"ok": true, ...}`` or raises ``Refused`` with Slack's error.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable

from trame_bot.sandbox.block_kit import MAX_MESSAGE_TEXT, MAX_VIEW_BYTES, view_errors
from trame_bot.sandbox.fake_records import (
    BOT_USER_NAME,
    Ephemeral,
    IssuedToken,
    Json,
    Message,
    Revision,
    StoredFile,
    Team,
    View,
)
from trame_bot.sandbox.fake_teams import Directory
from trame_bot.sandbox.fake_wire import Args, Refused, content


class WebApiMethods:
    """Chat, views, conversations, users and files, over the state FakeSlack keeps."""

    directory: Directory
    ephemerals: list[Ephemeral]
    views: dict[str, View]
    home_views: dict[str, View]
    files: dict[str, StoredFile]
    _clock: Callable[[], float]
    _channels: dict[str, list[Message]]
    _serial: itertools.count[int]
    _last_ts_micros: int

    def message(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self._channels.get(channel, []) if m.ts == ts), None)

    def _next_ts(self) -> str:
        """A message ts from the clock, unique and increasing even within one microsecond."""
        micros = max(int(self._clock() * 1_000_000), self._last_ts_micros + 100)
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._serial):08d}"

    def _next_hash(self) -> str:
        return f"{int(self._clock())}.{next(self._serial)}"

    def _revise(self, message: Message, text: str, blocks: list[Json]) -> None:
        message.history.append(Revision(message.text, message.blocks, self._clock()))
        message.text, message.blocks, message.edited = text, blocks, True

    def _post(self, message: Message) -> Message:
        self._channels.setdefault(message.channel, []).append(message)
        return message

    # -- auth

    def _auth_test(self, args: Args, team: Team, token: IssuedToken) -> Json:
        del args, token
        return {
            "url": team.url,
            "team": team.name,
            "user": BOT_USER_NAME,
            "team_id": team.id,
            "user_id": team.bot_user_id,
            "bot_id": team.bot_id,
            "is_enterprise_install": False,
        }

    def _auth_revoke(self, args: Args, team: Team, token: IssuedToken) -> Json:
        del args, team
        token.revoked = True
        return {"revoked": True}

    # -- chat

    def _chat_post_message(self, args: Args, team: Team, token: IssuedToken) -> Json:
        del token
        channel = self.directory.reachable_channel(team.id, args.text("channel"))
        text, blocks = content(args, require=True)
        message = self._post(
            Message(
                channel,
                self._next_ts(),
                text or "",
                blocks,
                user=team.bot_user_id,
                thread_ts=args.text("thread_ts"),
                team=team.id,
                bot_id=team.bot_id,
            )
        )
        return {"channel": channel, "ts": message.ts, "message": message.to_payload()}

    def _chat_update(self, args: Args, team: Team, token: IssuedToken) -> Json:
        del token
        channel, ts = args.text("channel"), args.text("ts")
        message = self.message(channel, ts) if channel and ts else None
        if channel and message is not None and team.id not in self.directory.channel_teams(channel):
            raise Refused("channel_not_found")
        if message is None:
            raise Refused("message_not_found")
        if message.user != team.bot_user_id:
            raise Refused("cant_update_message")
        if not args.has("text") and not args.has("blocks"):
            raise Refused("no_text")
        text, blocks = content(args, require=False)
        # Slack keeps the old blocks when the update has none: the old buttons stay.
        new_text = text if args.has("text") else message.text
        new_blocks = blocks if args.has("blocks") else message.blocks
        if not new_text and not new_blocks:
            raise Refused("no_text")
        self._revise(message, new_text or "", new_blocks)
        return {
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": message.to_payload(),
        }

    def _chat_post_ephemeral(self, args: Args, team: Team, token: IssuedToken) -> Json:
        del token
        channel = self.directory.reachable_channel(team.id, args.text("channel"))
        user = self.directory.visible_user(team.id, args.text("user"))
        text, blocks = content(args, require=True)
        ephemeral = Ephemeral(
            channel,
            user.id,
            self._next_ts(),
            text or "",
            blocks,
            args.text("thread_ts"),
            team=team.id,
        )
        self.ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.ts}

    # -- views

    def _views_open(self, args: Args, team: Team, token: IssuedToken) -> Json:
        del token
        return {"view": self._open_view(args, team, pushed=False).to_payload()}

    def _views_push(self, args: Args, team: Team, token: IssuedToken) -> Json:
        del token
        return {"view": self._open_view(args, team, pushed=True).to_payload()}

    def _open_view(self, args: Args, team: Team, *, pushed: bool) -> View:
        trigger_id = args.text("trigger_id") or args.text("interactivity_pointer")
        if not trigger_id:
            raise Refused("invalid_trigger_id")
        payload = self._view_payload(args, kinds=("modal",))
        view = View(
            self._next_id("V"),
            "modal",
            payload,
            self._next_hash(),
            trigger_id=trigger_id,
            team_id=team.id,
            bot_id=team.bot_id,
        )
        if pushed:
            # Real Slack pushes onto the modal the trigger came from; the fake cannot tell which.
            view.previous_view_id = next(
                (v.id for v in reversed(self.views.values()) if v.team_id == team.id), None
            )
        self.views[view.id] = view
        return view

    def _views_update(self, args: Args, team: Team, token: IssuedToken) -> Json:
        del token
        view_id, external_id = args.text("view_id"), args.text("external_id")
        view = self.views.get(view_id) if view_id else None
        if view is None and external_id:
            view = next(
                (v for v in self.views.values() if v.payload.get("external_id") == external_id),
                None,
            )
        if view is None or view.team_id != team.id:
            raise Refused("not_found")
        given_hash = args.text("hash")
        if given_hash and given_hash != view.hash:
            raise Refused("hash_conflict")
        view.payload = self._view_payload(args, kinds=(view.type,))
        view.hash = self._next_hash()
        return {"view": view.to_payload()}

    def _views_publish(self, args: Args, team: Team, token: IssuedToken) -> Json:
        del token
        user = self.directory.visible_user(team.id, args.text("user_id"))
        if user.team_id != team.id:
            raise Refused("user_not_found")  # a Home tab exists only where the app is installed
        payload = self._view_payload(args, kinds=("home",))
        view = self.home_views.get(user.id)
        if view is None:
            view = View(
                self._next_id("V"),
                "home",
                payload,
                self._next_hash(),
                user=user.id,
                team_id=team.id,
                bot_id=team.bot_id,
            )
            self.views[view.id] = view
            self.home_views[user.id] = view
        else:
            view.payload, view.hash = payload, self._next_hash()
        return {"view": view.to_payload()}

    def _view_payload(self, args: Args, *, kinds: tuple[str, ...]) -> Json:
        if not args.has("view"):
            raise Refused("invalid_arguments", ["missing required field [json-pointer:/view]"])
        view = args.structure("view")
        if not isinstance(view, dict):
            raise Refused("invalid_arguments", ["must be an object [json-pointer:/view]"])
        if len(json.dumps(view).encode()) > MAX_VIEW_BYTES:
            raise Refused("view_too_large")
        errors = view_errors(view)
        if view.get("type") not in kinds:
            errors.insert(0, f"must be one of {', '.join(kinds)} [json-pointer:/view/type]")
        if errors:
            raise Refused("invalid_arguments", errors)
        return view

    # -- conversations and users

    def _conversations_open(self, args: Args, team: Team, token: IssuedToken) -> Json:
        del token
        raw = args.values.get("users")
        users = raw if isinstance(raw, list) else (raw or "").split(",")
        ids = [u.strip() for u in users if isinstance(u, str) and u.strip()]
        if not ids:
            raise Refused("users_list_not_supplied")
        for user_id in ids:
            self.directory.visible_user(team.id, user_id)
        if len(ids) == 1:
            channel_id = "D" + ids[0][1:]
        else:
            digest = hashlib.sha1(",".join(sorted(ids)).encode()).hexdigest()
            channel_id = "G" + digest[:10].upper()
            if team.id not in self.directory.channel_teams(channel_id):
                self.directory.add_channel(channel_id, team.id)
        return {"no_op": False, "already_open": False, "channel": {"id": channel_id}}

    def _users_info(self, args: Args, team: Team, token: IssuedToken) -> Json:
        del token
        return {"user": self.directory.visible_user(team.id, args.text("user")).to_payload()}

    # -- files

    def _files_get_upload_url(self, args: Args, team: Team, token: IssuedToken) -> Json:
        del token
        filename, length = args.text("filename"), args.text("length")
        if not filename:
            raise Refused("invalid_arguments", ["missing required field [json-pointer:/filename]"])
        if length is None or not length.isdigit() or int(length) < 1:
            raise Refused(
                "invalid_arguments", ["must be a positive integer [json-pointer:/length]"]
            )
        stored = StoredFile(self._next_id("F"), filename, int(length), team_id=team.id)
        self.files[stored.id] = stored
        return {"upload_url": f"{args.base_url}/upload/{stored.id}", "file_id": stored.id}

    def _files_complete_upload(self, args: Args, team: Team, token: IssuedToken) -> Json:
        del token
        items = args.structure("files")
        if not isinstance(items, list) or not items:
            raise Refused("invalid_arguments", ["must be a non-empty array [json-pointer:/files]"])
        shared: list[StoredFile] = []
        for item in items:
            file_id = item.get("id") if isinstance(item, dict) else None
            stored = self.files.get(file_id) if isinstance(file_id, str) else None
            if stored is None or stored.content is None or stored.team_id != team.id:
                raise Refused("file_not_found")
            title = item.get("title")
            stored.title = title if isinstance(title, str) and title else stored.name
            shared.append(stored)
        channels = [args.text("channel_id")] if args.has("channel_id") else []
        channels += [c for c in (args.text("channels") or "").split(",") if c]
        comment = args.text("initial_comment") or ""
        if len(comment) > MAX_MESSAGE_TEXT:
            raise Refused("msg_too_long")
        targets = [self.directory.reachable_channel(team.id, c) for c in channels]
        for channel in targets:
            for stored in shared:
                stored.channel = channel
            self._post(
                Message(
                    channel,
                    self._next_ts(),
                    comment,
                    user=team.bot_user_id,
                    thread_ts=args.text("thread_ts"),
                    files=list(shared),
                    team=team.id,
                    bot_id=team.bot_id,
                )
            )
        return {"files": [{"id": f.id, "title": f.title} for f in shared]}

"""Requests as Slack sends them to a bot's ``/slack/events``: the same fields, encoded and signed.

Slash commands are form-encoded; interactions are a form field ``payload`` holding JSON; Events
API callbacks are JSON. Every request carries ``X-Slack-Request-Timestamp`` and
``X-Slack-Signature: v0=hex(HMAC-SHA256(signing_secret, "v0:{ts}:" + body))``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

Json = dict[str, Any]

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
VERIFICATION_TOKEN = "legacy-verification-token"  # deprecated by Slack, still sent
BOT_ID = "B0BOT"


@dataclass(frozen=True)
class SignedRequest:
    body: bytes
    headers: dict[str, str]

    def json(self) -> Json:
        """The JSON inside: the body itself, or the ``payload`` form field of an interaction."""
        if self.headers.get("Content-Type") == JSON:
            return dict(json.loads(self.body))
        fields = parse_qs(self.body.decode(), keep_blank_values=True)
        if "payload" in fields:
            return dict(json.loads(fields["payload"][0]))
        return {key: values[0] for key, values in fields.items()}


def text_input(value: str | None) -> Json:
    """A ``plain_text_input`` state value, as in ``view.state.values``."""
    return {"type": "plain_text_input", "value": value}


def selected_option(
    value: str | None, text: str | None = None, *, kind: str = "static_select"
) -> Json:
    """A single-choice state value (``static_select``, ``radio_buttons``…); None: nothing chosen."""
    if value is None:
        return {"type": kind, "selected_option": None}
    option = {"text": {"type": "plain_text", "text": text or value, "emoji": True}, "value": value}
    return {"type": kind, "selected_option": option}


class SlackRequests:
    """Builds signed requests for one workspace; ids (triggers, events) are unique per instance."""

    def __init__(
        self,
        signing_secret: str,
        *,
        team_id: str = "T0TEAM",
        team_domain: str = "test",
        api_app_id: str = "A0APP",
        bot_user_id: str = "U0BOT",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = signing_secret.encode()
        self.team_id = team_id
        self.team_domain = team_domain
        self.api_app_id = api_app_id
        self.bot_user_id = bot_user_id
        self._clock = clock
        self._serial = itertools.count(1)

    # -- signing

    def sign(
        self, body: bytes, timestamp: int | None = None, *, content_type: str = FORM
    ) -> dict[str, str]:
        """Slack's headers for ``body``; pass an old ``timestamp`` to get a stale request."""
        ts = int(self._clock()) if timestamp is None else timestamp
        base = f"v0:{ts}:".encode() + body
        digest = hmac.new(self._secret, base, hashlib.sha256).hexdigest()
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": f"v0={digest}",
        }

    def _form(self, fields: Mapping[str, str]) -> SignedRequest:
        body = urlencode(fields).encode()
        return SignedRequest(body, self.sign(body))

    def _interaction(self, payload: Json) -> SignedRequest:
        return self._form({"payload": json.dumps(payload)})

    def _json(self, document: Json, headers: Mapping[str, str] | None = None) -> SignedRequest:
        body = json.dumps(document).encode()
        return SignedRequest(body, {**self.sign(body, content_type=JSON), **(headers or {})})

    # -- slash commands

    def command(
        self,
        text: str,
        *,
        user: str,
        channel: str,
        command: str = "/trame",
        user_name: str | None = None,
        channel_name: str | None = None,
        team_domain: str | None = None,
        response_url: str | None = None,
        trigger_id: str | None = None,
    ) -> SignedRequest:
        """A slash command; the default ``response_url`` points at Slack (pass the fake's)."""
        serial = next(self._serial)
        return self._form(
            {
                "token": VERIFICATION_TOKEN,
                "team_id": self.team_id,
                "team_domain": self.team_domain if team_domain is None else team_domain,
                "channel_id": channel,
                "channel_name": _channel_name(channel) if channel_name is None else channel_name,
                "user_id": user,
                "user_name": user.lower() if user_name is None else user_name,
                "command": command,
                "text": text,
                "api_app_id": self.api_app_id,
                "is_enterprise_install": "false",
                "response_url": response_url
                or f"https://hooks.slack.com/commands/{self.team_id}/{serial}/{serial:024x}",
                "trigger_id": trigger_id or self.trigger_id(),
            }
        )

    # -- interactivity

    def block_action(
        self,
        *,
        user: str,
        action_id: str,
        value: str,
        block_id: str,
        channel: str | None = None,
        message_ts: str | None = None,
        message: Json | None = None,
        response_url: str | None = None,
        trigger_id: str | None = None,
        view: Json | None = None,
    ) -> SignedRequest:
        """A button click on a message, or in a modal or Home tab when ``view`` is given."""
        action: Json = {
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "type": "button",
            "action_ts": self._event_ts(),
        }
        button = _find_element(
            (message or view or {}).get("blocks") or [], block_id=block_id, action_id=action_id
        )
        if button is not None and "text" in button:
            action["text"] = button["text"]
        if button is not None and "style" in button:
            action["style"] = button["style"]
        payload: Json = {
            "type": "block_actions",
            "user": self._user(user),
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": trigger_id or self.trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "state": {"values": {}},
            "actions": [action],
        }
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view.get("id", "V0VIEW")}
            payload["view"] = view
            if channel is not None:  # Slack names the channel only for a modal opened from one
                payload["channel"] = {"id": channel, "name": _channel_name(channel)}
        else:
            if channel is None or message_ts is None:
                raise ValueError("an action on a message needs channel and message_ts")
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": False,
            }
            payload["channel"] = {"id": channel, "name": _channel_name(channel)}
            if message is not None:
                payload["message"] = message
            payload["response_url"] = response_url or self._hook_url("actions")
        return self._interaction(payload)

    def view_submission(
        self,
        *,
        user: str,
        callback_id: str,
        private_metadata: str,
        values: Mapping[str, Mapping[str, Json]],
        view_id: str = "V0VIEW",
        trigger_id: str | None = None,
    ) -> SignedRequest:
        """A modal's submit button; ``values`` is ``{block_id: {action_id: state value}}``."""
        return self._interaction(
            {
                "type": "view_submission",
                "team": {"id": self.team_id, "domain": self.team_domain},
                "user": self._user(user),
                "api_app_id": self.api_app_id,
                "token": VERIFICATION_TOKEN,
                "trigger_id": trigger_id or self.trigger_id(),
                "view": self._view(view_id, callback_id, private_metadata, values),
                "response_urls": [],
                "enterprise": None,
                "is_enterprise_install": False,
            }
        )

    def view_closed(
        self,
        *,
        user: str,
        callback_id: str,
        private_metadata: str = "",
        view_id: str = "V0VIEW",
        is_cleared: bool = False,
    ) -> SignedRequest:
        """A modal closed by the user (sent only for views with ``notify_on_close``)."""
        return self._interaction(
            {
                "type": "view_closed",
                "team": {"id": self.team_id, "domain": self.team_domain},
                "user": self._user(user),
                "api_app_id": self.api_app_id,
                "token": VERIFICATION_TOKEN,
                "view": self._view(view_id, callback_id, private_metadata, {}),
                "is_cleared": is_cleared,
                "enterprise": None,
                "is_enterprise_install": False,
            }
        )

    # -- Events API

    def event(
        self,
        event: Json,
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> SignedRequest:
        """An ``event_callback``; a retry carries the same ``event_id`` and retry headers."""
        headers: dict[str, str] = {}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        return self._json(
            {
                "token": VERIFICATION_TOKEN,
                "team_id": self.team_id,
                "api_app_id": self.api_app_id,
                "event": event,
                "type": "event_callback",
                "event_id": event_id or f"Ev0{next(self._serial):08d}",
                "event_time": int(self._clock()),
                "authorizations": [
                    {
                        "enterprise_id": None,
                        "team_id": self.team_id,
                        "user_id": self.bot_user_id,
                        "is_bot": True,
                        "is_enterprise_install": False,
                    }
                ],
                "is_ext_shared_channel": False,
            },
            headers,
        )

    def url_verification(self, challenge: str) -> SignedRequest:
        return self._json(
            {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        )

    def app_home_opened(self, user: str, *, tab: str = "home") -> Json:
        """The event sent when ``user`` opens the app's Home (or Messages) tab."""
        return {
            "type": "app_home_opened",
            "user": user,
            "channel": "D" + user[1:],
            "tab": tab,
            "event_ts": self._event_ts(),
        }

    # -- the same payloads unsigned, for Socket Mode envelopes (Slack sends them as JSON there)

    def command_fields(
        self,
        text: str,
        *,
        user: str,
        channel: str,
        command: str = "/trame",
        user_name: str | None = None,
        channel_name: str | None = None,
        team_domain: str | None = None,
        response_url: str | None = None,
        trigger_id: str | None = None,
    ) -> dict[str, str]:
        """The fields ``command()`` form-encodes: a ``slash_commands`` envelope's payload."""
        signed = self.command(
            text,
            user=user,
            channel=channel,
            command=command,
            user_name=user_name,
            channel_name=channel_name,
            team_domain=team_domain,
            response_url=response_url,
            trigger_id=trigger_id,
        )
        return {key: str(value) for key, value in signed.json().items()}

    def block_action_payload(
        self,
        *,
        user: str,
        action_id: str,
        value: str,
        block_id: str,
        channel: str | None = None,
        message_ts: str | None = None,
        message: Json | None = None,
        response_url: str | None = None,
        trigger_id: str | None = None,
        view: Json | None = None,
    ) -> Json:
        """The ``block_actions`` payload ``block_action()`` sends: an ``interactive`` envelope's."""
        return self.block_action(
            user=user,
            action_id=action_id,
            value=value,
            block_id=block_id,
            channel=channel,
            message_ts=message_ts,
            message=message,
            response_url=response_url,
            trigger_id=trigger_id,
            view=view,
        ).json()

    def view_submission_payload(
        self,
        *,
        user: str,
        callback_id: str,
        private_metadata: str,
        values: Mapping[str, Mapping[str, Json]],
        view_id: str = "V0VIEW",
        trigger_id: str | None = None,
    ) -> Json:
        """The ``view_submission`` payload ``view_submission()`` sends."""
        return self.view_submission(
            user=user,
            callback_id=callback_id,
            private_metadata=private_metadata,
            values=values,
            view_id=view_id,
            trigger_id=trigger_id,
        ).json()

    def event_body(self, event: Json, *, event_id: str | None = None) -> Json:
        """The ``event_callback`` body ``event()`` sends: an ``events_api`` envelope's payload."""
        return self.event(event, event_id=event_id).json()

    def callback(self, body: Json) -> SignedRequest:
        """``body`` as is, signed: e.g. the ``app_uninstalled`` events the fake Slack returns."""
        return self._json(body)

    # -- ids

    def trigger_id(self) -> str:
        """A fresh trigger id in Slack's shape (``12345.98765.abcd2358fdea``)."""
        serial = next(self._serial)
        return f"{serial}.{int(self._clock())}.{serial:016x}"

    def _hook_url(self, kind: str) -> str:
        serial = next(self._serial)
        return f"https://hooks.slack.com/{kind}/{self.team_id}/{serial}/{serial:024x}"

    def _event_ts(self) -> str:
        return f"{self._clock():.6f}"

    def _user(self, user: str) -> Json:
        return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": self.team_id}

    def _view(
        self,
        view_id: str,
        callback_id: str,
        private_metadata: str,
        values: Mapping[str, Mapping[str, Json]],
    ) -> Json:
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": {block: dict(actions) for block, actions in values.items()}},
            "hash": f"{int(self._clock())}.{view_id}",
            "root_view_id": view_id,
            "previous_view_id": None,
            "external_id": "",
            "app_id": self.api_app_id,
            "bot_id": BOT_ID,
            "clear_on_close": False,
            "notify_on_close": False,
            "blocks": [],
        }


def _channel_name(channel: str) -> str:
    return "directmessage" if channel.startswith("D") else channel.lower()


def _find_element(blocks: list[Any], *, block_id: str, action_id: str) -> Json | None:
    for block in blocks:
        if not isinstance(block, dict) or block.get("block_id") != block_id:
            continue
        elements = list(block.get("elements") or [])
        if "accessory" in block:
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element
    return None

"""Slack's side of the conversation: the page's intents (a typed command, a click, a submitted
form, an opened Home tab) become the signed requests Slack would send, POSTed over HTTP to the
bot's own `/slack/events`. The bot cannot tell them from Slack's.

What Slack shows only in its client is kept here: the ack texts of commands, who opened which
modal (by the trigger id their action carried), the modals they closed, and what a submitted
form held and was answered.

Each request names the Slack team of the person acting (`team_id`, `team.id`, `user.team_id`),
as Slack does: the bot picks that team's installation, and that team's channels only.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from trame_bot.sandbox.fake_slack import APP_ID, FakeSlack, View
from trame_bot.sandbox.render import Form
from trame_bot.sandbox.slack_requests import (
    SignedRequest,
    SlackRequests,
    selected_option,
    text_input,
)

Json = dict[str, Any]
SLASH_COMMAND = "/trame"
REQUIRED = "Please complete this required field."


@dataclass(frozen=True)
class Note:
    """A line only one user sees in a channel: the command they typed or the ack's answer."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[Json] = field(default_factory=list)
    command: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What the page is told after an intent: Slack's own complaint when the bot failed."""

    ok: bool
    error: str | None = None
    errors: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> Json:
        return {"ok": self.ok, "error": self.error, "errors": dict(self.errors)}


class Relay:
    def __init__(
        self,
        fake: FakeSlack,
        signing_secret: str,
        *,
        events_url: str,
        fake_url: str,
        session: aiohttp.ClientSession,
    ) -> None:
        self.fake = fake
        self.signing_secret = signing_secret
        self._requests: dict[str, SlackRequests] = {}
        self.events_url = events_url
        self.fake_url = fake_url
        self.session = session
        self.notes: list[Note] = []
        self.forms: dict[str, Form] = {}
        self._triggers: dict[str, str] = {}
        self._closed: set[str] = set()
        self._keys = itertools.count(1)

    # -- intents

    async def command(self, user: str, channel: str, typed: str) -> Outcome:
        typed = typed.strip()
        name, _, text = typed.partition(" ")
        if name != SLASH_COMMAND:
            return Outcome(False, f"only {SLASH_COMMAND} is installed here: try `/trame help`")
        self._note(channel, user, "", command=typed)
        request = self.slack(user).command(
            text.strip(),
            user=user,
            channel=channel,
            response_url=self._response_url(channel=channel, user=user),
            trigger_id=self._trigger(user),
        )
        status, body = await self._send(request)
        if status != 200:
            return Outcome(False, f"{SLASH_COMMAND} failed with the error “http_{status}”")
        answer = body
        if answer.get("text") or answer.get("blocks"):
            self._note(
                channel, user, str(answer.get("text") or ""), list(answer.get("blocks") or [])
            )
        return Outcome(True)

    async def click(
        self,
        user: str,
        *,
        block_id: str,
        action_id: str,
        value: str,
        channel: str | None = None,
        ts: str | None = None,
        view_id: str | None = None,
    ) -> Outcome:
        """A button on a message (``channel`` and ``ts``) or in a modal or Home tab (``view_id``)."""
        view = self.fake.views.get(view_id) if view_id else None
        message = self.fake.message(channel, ts) if channel and ts else None
        if view is None and message is None:
            return Outcome(False, "that message or view is gone")
        request = self.slack(user).block_action(
            user=user,
            action_id=action_id,
            value=value,
            block_id=block_id,
            channel=channel if message is not None else None,
            message_ts=ts if message is not None else None,
            message=message.to_payload() if message is not None else None,
            view=view.to_payload() if view is not None and message is None else None,
            response_url=self._response_url(channel=channel, ts=ts, user=user)
            if message is not None
            else None,
            trigger_id=self._trigger(user),
        )
        status, _ = await self._send(request)
        return Outcome(True) if status == 200 else Outcome(False, f"the bot answered {status}")

    async def submit(self, user: str, view_id: str, raw: Mapping[str, str]) -> Outcome:
        """A modal's submit button: the inputs' state as Slack builds it, by block and action."""
        view = self.fake.views.get(view_id)
        if view is None or view_id in self._closed:
            return Outcome(False, "that form is closed")
        missing = _missing(view.payload, raw)
        if missing:
            # Slack's client refuses an empty required field before the bot hears of it.
            self.forms[view_id] = Form(values=dict(raw), errors=missing)
            return Outcome(False, errors=missing)
        request = self.slack(user).view_submission(
            user=user,
            callback_id=str(view.payload.get("callback_id") or ""),
            private_metadata=str(view.payload.get("private_metadata") or ""),
            values=_state_values(view.payload, raw),
            view_id=view_id,
        )
        status, body = await self._send(request)
        if status != 200:
            return Outcome(False, f"the bot answered {status}")
        answer = body
        errors = answer.get("errors") if answer.get("response_action") == "errors" else None
        if isinstance(errors, dict) and errors:
            shown = {str(k): str(v) for k, v in errors.items()}
            self.forms[view_id] = Form(values=dict(raw), errors=shown)
            return Outcome(False, errors=shown)
        self._closed.add(view_id)
        return Outcome(True)

    def close(self, view_id: str) -> None:
        self._closed.add(view_id)

    async def open_home(self, user: str) -> Outcome:
        slack = self.slack(user)
        status, _ = await self._send(slack.event(slack.app_home_opened(user)))
        return Outcome(True) if status == 200 else Outcome(False, f"the bot answered {status}")

    # -- what the page shows

    def modal_for(self, user: str) -> View | None:
        """The newest modal the bot opened with a trigger from this user, unless closed."""
        mine = [
            v
            for v in self.fake.views.values()
            if v.type == "modal"
            and v.id not in self._closed
            and self._triggers.get(v.trigger_id or "") == user
        ]
        return mine[-1] if mine else None

    def notes_for(self, user: str, channel: str) -> list[Note]:
        return [n for n in self.notes if n.user == user and n.channel == channel]

    # -- plumbing

    async def _send(self, request: SignedRequest) -> tuple[int, Json]:
        """The status and the answer as Slack reads it: JSON, or a plain text body as the
        message text (what Bolt sends for ``ack("text")``)."""
        async with self.session.post(
            self.events_url, data=request.body, headers=request.headers
        ) as response:
            body = await response.text()
            if response.content_type == "application/json":
                return response.status, _json(body)
            return response.status, {"text": body} if body else {}

    def slack(self, user: str) -> SlackRequests:
        """Requests as Slack sends them for ``user``'s team."""
        found = self.fake.user(user)
        team = self.fake.teams[found.team_id if found is not None else ""]
        if team.id not in self._requests:
            self._requests[team.id] = SlackRequests(
                self.signing_secret,
                team_id=team.id,
                team_domain=team.domain,
                api_app_id=APP_ID,
                bot_user_id=team.bot_user_id,
            )
        return self._requests[team.id]

    def _trigger(self, user: str) -> str:
        trigger = self.slack(user).trigger_id()
        self._triggers[trigger] = user
        return trigger

    def _response_url(self, *, channel: str | None, user: str, ts: str | None = None) -> str:
        return self.fake.response_url(
            self.fake_url, f"r{next(self._keys)}", channel=channel, message_ts=ts, user=user
        )

    def _note(
        self,
        channel: str,
        user: str,
        text: str,
        blocks: list[Json] | None = None,
        *,
        command: str | None = None,
    ) -> None:
        self.notes.append(Note(channel, user, f"{time.time():.6f}", text, blocks or [], command))


def _json(body: str) -> Json:
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _inputs(view: Json) -> list[tuple[str, Json]]:
    """The view's input blocks with their block ids (Slack makes one up when absent)."""
    return [
        (str(block.get("block_id") or f"input-{index}"), block)
        for index, block in enumerate(view.get("blocks") or [])
        if isinstance(block, dict) and block.get("type") == "input"
    ]


def _missing(view: Json, raw: Mapping[str, str]) -> dict[str, str]:
    return {
        block_id: REQUIRED
        for block_id, block in _inputs(view)
        if not block.get("optional") and not (raw.get(block_id) or "").strip()
    }


def _state_values(view: Json, raw: Mapping[str, str]) -> dict[str, dict[str, Json]]:
    """``view.state.values`` for the view's input blocks, from the page's ``{block_id: value}``."""
    values: dict[str, dict[str, Json]] = {}
    for block_id, block in _inputs(view):
        element = block.get("element") or {}
        action_id = str(element.get("action_id") or "")
        given = raw.get(block_id) or None
        if element.get("type") == "static_select":
            label = next(
                (
                    str(o.get("text", {}).get("text", ""))
                    for o in element.get("options") or []
                    if isinstance(o, dict) and o.get("value") == given
                ),
                None,
            )
            values[block_id] = {action_id: selected_option(given, label)}
        else:
            values[block_id] = {action_id: text_input(given)}
    return values

"""What the fake Slack keeps: teams, users, messages, views, files and the calls it received.

Every record names the Slack team it belongs to; the defaults are the fake's first team, so
that code written for one workspace reads the same as before.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]

TEAM_ID = "T0TEAM"
TEAM_NAME = "Test Team"
TEAM_DOMAIN = "test"
BOT_USER_ID = "U0BOT"
BOT_USER_NAME = "trame-bot"
BOT_ID = "B0BOT"
APP_ID = "A0APP"


@dataclass
class Team:
    """A Slack workspace; ``active`` False is a deactivated workspace (``account_inactive``)."""

    id: str
    name: str
    domain: str
    bot_user_id: str
    bot_id: str
    active: bool = True
    installer: str | None = None
    """Who installed the app last (by OAuth), None before any install."""
    scopes: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"https://{self.domain}.slack.com/"


@dataclass
class IssuedToken:
    """A token the fake accepts or once accepted. ``label`` names it in tests without the secret."""

    value: str
    kind: Literal["bot", "refresh", "app"]
    team_id: str | None
    label: str
    expires_at: float | None = None
    revoked: bool = False
    used: bool = False
    """A refresh token already exchanged (it is single-use)."""


@dataclass
class Call:
    """One Web API call as received; ``status`` stays None while the answer is pending.

    ``team_id`` and ``token_label`` say whose token made the call (None when it was refused
    before a token was recognised).
    """

    method: str
    args: Json
    at: float
    status: int | None = None
    error: str | None = None
    team_id: str | None = None
    token_label: str | None = None

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
    team_id: str = TEAM_ID

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
    team: str = TEAM_ID
    """The team of the author (in a shared channel, either team)."""
    bot_id: str | None = None
    """Set when a bot wrote it: the bot of ``team``."""

    @property
    def from_bot(self) -> bool:
        return self.bot_id is not None or self.user == BOT_USER_ID

    def to_payload(self) -> Json:
        """The message as Slack shows it in API answers and interaction payloads."""
        payload: Json = {
            "type": "message",
            "user": self.user,
            "text": self.text,
            "ts": self.ts,
            "team": self.team,
        }
        if self.from_bot:
            payload["bot_id"] = self.bot_id or BOT_ID
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
    team: str = TEAM_ID
    """The team whose bot sent it."""


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
    team_id: str = TEAM_ID
    bot_id: str = BOT_ID

    def to_payload(self) -> Json:
        return {
            "callback_id": "",
            "private_metadata": "",
            "external_id": "",
            **copy.deepcopy(self.payload),
            "id": self.id,
            "team_id": self.team_id,
            "state": {"values": {}},
            "hash": self.hash,
            "root_view_id": self.root_view_id or self.id,
            "previous_view_id": self.previous_view_id,
            "app_id": APP_ID,
            "bot_id": self.bot_id,
        }


@dataclass(frozen=True)
class User:
    id: str
    name: str
    real_name: str
    tz: str = "Europe/Paris"
    is_bot: bool = False
    team_id: str = TEAM_ID

    def to_payload(self) -> Json:
        return {
            "id": self.id,
            "team_id": self.team_id,
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

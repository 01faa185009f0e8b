"""The fake Slack's teams: their users, channels and tokens, and who may reach what.

A token reaches only its own team, as in Slack: another team's channel is ``channel_not_found``,
another team's user ``user_not_found`` (unless a shared channel connects the two teams).
Unknown tokens are ``invalid_auth``, revoked ones ``token_revoked``, expired ones
``token_expired``, a deactivated workspace's ``account_inactive``; an app-level token (xapp-)
used for a bot method is ``not_allowed_token_type``. The first team is lenient, as the fake was
before teams: any well-formed channel or user id not registered to another team is its own.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Literal

from trame_bot.sandbox.fake_records import (
    BOT_ID,
    BOT_USER_ID,
    BOT_USER_NAME,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    IssuedToken,
    Team,
    User,
)
from trame_bot.sandbox.fake_wire import Refused

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_TEAM_ID = re.compile(r"^T[A-Z0-9]{2,}$")


def dm_channel(user_id: str) -> str:
    """The bot's direct-message channel with ``user_id``."""
    return "D" + user_id[1:]


class Directory:
    """Teams, users, channel ownership and tokens; the first team holds ``token``."""

    def __init__(self, token: str, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.teams: dict[str, Team] = {
            TEAM_ID: Team(TEAM_ID, TEAM_NAME, TEAM_DOMAIN, BOT_USER_ID, BOT_ID)
        }
        self.users: dict[str, User] = {
            BOT_USER_ID: User(BOT_USER_ID, BOT_USER_NAME, "Trame Bot", is_bot=True)
        }
        self.tokens: dict[str, IssuedToken] = {}
        self._owners: dict[str, str] = {}
        self._shared: dict[str, set[str]] = {}
        self._issued: Counter[tuple[str | None, str]] = Counter()
        self._serial = itertools.count(100_001)
        if token:
            self._register(token, "bot", TEAM_ID)

    # -- arranging

    def add_team(
        self,
        team_id: str,
        name: str,
        *,
        domain: str | None = None,
        bot_user_id: str | None = None,
        bot_id: str | None = None,
    ) -> Team:
        """A team (renamed when it exists); its bot user is ``U<id>BOT`` unless given."""
        if not _TEAM_ID.match(team_id):
            raise ValueError(f"not a Slack team id: {team_id!r}")
        existing = self.teams.get(team_id)
        if existing is not None:
            existing.name, existing.domain = name, domain or existing.domain
            return existing
        suffix = team_id[1:]
        team = Team(
            team_id,
            name,
            domain or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or suffix.lower(),
            bot_user_id or f"U{suffix}BOT",
            bot_id or f"B{suffix}BOT",
        )
        self.teams[team_id] = team
        self.users[team.bot_user_id] = User(
            team.bot_user_id, BOT_USER_NAME, "Trame Bot", is_bot=True, team_id=team_id
        )
        return team

    def team(self, team_id: str) -> Team:
        team = self.teams.get(team_id)
        if team is None:
            raise ValueError(f"unknown team {team_id!r}: add it with add_team first")
        return team

    def add_user(self, user: User) -> User:
        self.team(user.team_id)
        if not USER_ID.match(user.id):
            raise ValueError(f"not a Slack user id: {user.id!r}")
        self.users[user.id] = user
        return user

    def add_channel(self, channel: str, team_id: str) -> None:
        self.team(team_id)
        if not CHANNEL_ID.match(channel):
            raise ValueError(f"not a Slack channel id: {channel!r}")
        owner = self._owners.setdefault(channel, team_id)
        if owner != team_id:
            raise ValueError(f"{channel} belongs to {owner}; share it with share_channel")

    def share_channel(self, channel: str, team_a: str, team_b: str) -> None:
        """Slack Connect: ``channel`` (registered to ``team_a`` if nobody owns it) joins ``team_b``."""
        self.team(team_b)
        if channel not in self._owners:
            self.add_channel(channel, team_a)
        for team_id in (team_a, team_b):
            if team_id != self._owners[channel]:
                self._shared.setdefault(channel, set()).add(team_id)

    def owner(self, channel: str) -> str | None:
        """The team ``channel`` belongs to: registered, a DM's user's, else the first team."""
        if not CHANNEL_ID.match(channel):
            return None
        if channel.startswith("D"):
            return self._dm_user(channel).team_id
        return self._owners.get(channel, TEAM_ID)

    def channel_teams(self, channel: str) -> set[str]:
        """The teams that see ``channel`` (empty for a malformed id)."""
        owner = self.owner(channel)
        if owner is None:
            return set()
        return {owner, *self._shared.get(channel, ())}

    def is_shared(self, channel: str) -> bool:
        return bool(self._shared.get(channel))

    def channels_of(self, team_id: str) -> list[str]:
        """Channels registered to ``team_id`` or shared with it."""
        return sorted(c for c in self._owners if team_id in self.channel_teams(c))

    def user(self, user_id: str) -> User | None:
        """A known user, or one of the first team made up for any well-formed user id."""
        if user_id in self.users:
            return self.users[user_id]
        if USER_ID.match(user_id):
            return User(user_id, user_id.lower(), f"User {user_id}")
        return None

    # -- reaching, as a team's token

    def reachable_channel(self, team_id: str, channel: str | None) -> str:
        """The channel id to use; a user id means the bot's DM with that user."""
        if channel and USER_ID.match(channel):
            channel = dm_channel(channel)
        if not channel or not CHANNEL_ID.match(channel):
            raise Refused("channel_not_found")
        if channel.startswith("D"):
            # A DM with a user of a connected team (Slack Connect) is reachable too.
            reachable = self.connected(team_id, self._dm_user(channel).team_id)
        else:
            reachable = team_id in self.channel_teams(channel)
        if not reachable:
            raise Refused("channel_not_found")
        return channel

    def visible_user(self, team_id: str, user_id: str | None) -> User:
        user = self.user(user_id) if user_id else None
        if user is None or not self.connected(team_id, user.team_id):
            raise Refused("user_not_found")
        return user

    def _dm_user(self, channel: str) -> User:
        rest = channel[1:]
        found = self.users.get("U" + rest) or self.users.get("W" + rest)
        return found or User("U" + rest, "u" + rest.lower(), f"User U{rest}")

    def connected(self, team_a: str, team_b: str) -> bool:
        """Same team, or two teams sharing a channel."""
        if team_a == team_b:
            return True
        return any({team_a, team_b} <= self.channel_teams(c) for c in self._shared)

    # -- tokens

    def authenticate(self, token: str | None, kind: Literal["bot", "app"] = "bot") -> IssuedToken:
        """The token's record, or Slack's refusal of it."""
        if not token:
            raise Refused("not_authed")
        found = self.tokens.get(token)
        if found is None or found.kind == "refresh":
            raise Refused("invalid_auth")
        if found.revoked:
            raise Refused("token_revoked")
        if found.kind != kind:
            raise Refused("not_allowed_token_type" if kind == "bot" else "invalid_auth")
        if found.expires_at is not None and self._clock() >= found.expires_at:
            raise Refused("token_expired")
        if found.team_id is not None and not self.team(found.team_id).active:
            raise Refused("account_inactive")
        return found

    def issue(
        self,
        team_id: str | None,
        kind: Literal["bot", "refresh", "app"],
        *,
        lifetime: float | None = None,
    ) -> IssuedToken:
        serial, secret = next(self._serial), secrets.token_hex(12)
        if kind == "bot":
            value = f"xoxb-{serial}-{serial + 7}-{secret}"
        elif kind == "refresh":
            value = f"xoxe-1-{serial}-{secret}"
        else:
            value = f"xapp-1-A0APP-{serial}-{secret}"
        expires_at = None if lifetime is None else self._clock() + lifetime
        return self._register(value, kind, team_id, expires_at)

    def register_app_token(self, token: str) -> IssuedToken:
        return self._register(token, "app", None)

    def _register(
        self,
        value: str,
        kind: Literal["bot", "refresh", "app"],
        team_id: str | None,
        expires_at: float | None = None,
    ) -> IssuedToken:
        self._issued[(team_id, kind)] += 1
        label = f"{team_id or 'app'} {kind} #{self._issued[(team_id, kind)]}"
        issued = IssuedToken(value, kind, team_id, label, expires_at)
        self.tokens[value] = issued
        return issued

    def tokens_of(self, team_id: str, kind: str = "bot") -> Iterator[IssuedToken]:
        return (t for t in self.tokens.values() if t.team_id == team_id and t.kind == kind)

    def revoke_team(self, team_id: str) -> None:
        for token in self.tokens.values():
            if token.team_id == team_id:
                token.revoked = True

    def expire(self, team_id: str) -> None:
        now = self._clock()
        for token in self.tokens_of(team_id):
            token.expires_at = now

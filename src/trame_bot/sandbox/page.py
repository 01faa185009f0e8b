"""What the sandbox page shows one user: their Slack team's channels with their ephemeral lines,
the bot's DM, the App Home and the open modal, rendered from the fake Slack's record and the
relay's. A person sees only their own team's channels and people, as in Slack."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from trame_bot.sandbox import render
from trame_bot.sandbox.fake_slack import FakeSlack, Message
from trame_bot.sandbox.mrkdwn import Names
from trame_bot.sandbox.relay import Relay
from trame_bot.sandbox.seed import TEAMS, SlackTeam

Json = dict[str, Any]
EMPTY = (
    '<p class="empty">Nothing here yet. Type <code>/trame help</code> below, or request a run '
    "in the Engine panel.</p>"
)
EMPTY_DM = '<p class="empty">The bot writes here when a run you asked for is decided.</p>'


def dm_channel(user: str) -> str:
    """The bot's DM with ``user``, as the fake Slack names it."""
    return "D" + user[1:]


class Page:
    def __init__(
        self,
        fake: FakeSlack,
        relay: Relay,
        teams: Sequence[SlackTeam] = TEAMS,
    ) -> None:
        self.fake = fake
        self.relay = relay
        self.teams = list(teams)
        self.names = Names(
            users={p.id: p.name for t in teams for p in t.people},
            channels={id: name for t in teams for id, name in t.channels.items()},
        )

    def state(self, user: str) -> Json:
        team = next(t for t in self.teams if user in {p.id for p in t.people})
        home = self.fake.home_views.get(user)
        return {
            "me": user,
            "team": team.id,
            "people": [{"id": p.id, "name": p.name, "title": p.title} for p in team.people],
            "channels": [
                {"id": id, "name": name, "html": self.timeline(id, user)}
                for id, name in team.channels.items()
            ],
            "dm": {
                "id": dm_channel(user),
                "html": self.timeline(dm_channel(user), user, empty=EMPTY_DM),
            },
            "home": render.home(home.payload, self.names, home.id) if home else None,
            "modal": self.modal(user),
        }

    def timeline(self, channel: str, user: str, *, empty: str = EMPTY) -> str:
        """The channel's messages with threads under them, and this user's ephemeral lines."""
        messages = self.fake.messages(channel)
        parents = {m.ts for m in messages if m.thread_ts in (None, m.ts)}
        replies: dict[str, list[Message]] = {}
        for m in messages:
            if m.ts not in parents and m.thread_ts in parents:
                replies.setdefault(m.thread_ts or "", []).append(m)
        # A reply whose parent is gone (the fake forgets on restart) shows at the top level.
        items = [
            (_at(m.ts), render.message(m, self.names, replies.get(m.ts, [])))
            for m in messages
            if m.ts in parents or m.thread_ts not in parents
        ]
        items += [
            (_at(n.ts), render.ephemeral(n.ts, n.text, n.blocks, self.names, command=n.command))
            for n in self.relay.notes_for(user, channel)
        ]
        items += [
            (_at(e.ts), render.ephemeral(e.ts, e.text, e.blocks, self.names))
            for e in self.fake.ephemerals
            if e.user == user and e.channel == channel
        ]
        items.sort(key=lambda item: item[0])
        return "".join(html for _, html in items) or empty

    def modal(self, user: str) -> Json | None:
        view = self.relay.modal_for(user)
        if view is None:
            return None
        form = self.relay.forms.get(view.id, render.Form())
        key = json.dumps([view.id, view.hash, dict(form.values), dict(form.errors)])
        return {
            "id": view.id,
            "key": key,
            "html": render.modal(view.payload, self.names, view.id, form),
        }


def _at(ts: str) -> float:
    try:
        return float(ts)
    except ValueError:
        return 0.0

"""Outbox senders for Slack: they render the current state and call the Web API with the client
of the message's workspace's Slack team (`team_clients.py`), looked up at each send."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from trame_bot.services import alerts, cards
from trame_bot.services.context import Context
from trame_bot.services.outbox import DeliveryError, Held, Kind, Sender
from trame_bot.slack.blocks.alerts import alert_message
from trame_bot.slack.blocks.card import approval_card
from trame_bot.slack.blocks.notices import channel_notice, outcome_dm, thread_reply
from trame_bot.slack.client import delivery_error
from trame_bot.slack.team_clients import (
    DEAD_TOKEN,
    EXPIRED,
    TOKEN_RETRY,
    TeamClient,
    TeamClients,
)
from trame_bot.store.models import OutboxMessage

NOT_POSTED_YET = 2.0
"""Seconds to wait before retrying an update or reply whose card is still being posted."""


Send = Callable[[TeamClient, dict[str, Any]], Awaitable[None]]


class SlackSenders:
    def __init__(self, ctx: Context, teams: TeamClients) -> None:
        self.ctx = ctx
        self.teams = teams
        self.dm_channels = DmChannels()

    def registry(self) -> dict[str, Sender]:
        return {
            Kind.SLACK_CARD.value: self._guarded(self.card),
            Kind.SLACK_THREAD.value: self._guarded(self.thread),
            Kind.SLACK_DM.value: self._guarded(self.dm),
            Kind.SLACK_POST.value: self._guarded(self.post),
            Kind.SLACK_ALERT.value: self._guarded(self.alert),
        }

    def _guarded(self, send: Send) -> Sender:
        """A refused token holds the row (`TeamClients.refused`); any other failure becomes
        the outbox's retry decision."""

        async def sender(message: OutboxMessage) -> None:
            team = await self.teams.for_workspace(message.workspace_id)
            try:
                await send(team, message.payload)
            except DeliveryError:
                raise
            except SlackApiError as exc:
                error = _error_code(exc)
                if error in DEAD_TOKEN:
                    raise await self.teams.refused(team, error) from exc
                if error == EXPIRED:
                    raise Held("Slack token expired", retry_after=TOKEN_RETRY) from exc
                raise delivery_error(exc) from exc
            except Exception as exc:
                raise delivery_error(exc) from exc

        return sender

    async def card(self, team: TeamClient, payload: dict[str, Any]) -> None:
        """Post the card when it has no message yet, otherwise update it in place.

        Updates always send the blocks: `chat.update` without them keeps the old buttons.
        """
        client = team.client
        card = await cards.run_card(self.ctx, payload["run_id"])
        text, blocks = approval_card(card)
        if card.slack_ts is None:
            if not payload.get("post"):
                raise DeliveryError("card not posted yet", retry_after=NOT_POSTED_YET)
            response = await client.chat_postMessage(
                channel=card.channel, text=text, blocks=blocks, unfurl_links=False
            )
            await cards.record_card_posted(
                self.ctx, card.run_id, str(response["channel"]), str(response["ts"])
            )
            return
        await client.chat_update(channel=card.channel, ts=card.slack_ts, text=text, blocks=blocks)

    async def thread(self, team: TeamClient, payload: dict[str, Any]) -> None:
        client = team.client
        channel, ts = await cards.card_message(self.ctx, payload["run_id"])
        if ts is None:
            raise DeliveryError("card not posted yet", retry_after=NOT_POSTED_YET)
        text, blocks = thread_reply(payload["event"], payload.get("data", {}))
        await client.chat_postMessage(
            channel=channel,
            thread_ts=ts,
            text=text,
            blocks=blocks,
            unfurl_links=False,
        )

    async def dm(self, team: TeamClient, payload: dict[str, Any]) -> None:
        """Post in the person's DM with the bot. Its channel is opened once and remembered
        (`DmChannels`): a second Web API call per DM otherwise, for an id that does not
        change; one Slack no longer knows is opened again."""
        text, blocks = outcome_dm(payload["event"], payload.get("data", {}))
        key = (team.team_id, str(payload["user"]))
        known = self.dm_channels.get(key)
        if known is not None:
            try:
                await team.client.chat_postMessage(channel=known, text=text, blocks=blocks)
                return
            except SlackApiError as exc:
                if _error_code(exc) != "channel_not_found":
                    raise
                self.dm_channels.forget(key)
        opened = await team.client.conversations_open(users=payload["user"])
        channel = self.dm_channels.remember(key, str(opened["channel"]["id"]))
        await team.client.chat_postMessage(channel=channel, text=text, blocks=blocks)

    async def post(self, team: TeamClient, payload: dict[str, Any]) -> None:
        client = team.client
        if payload.get("alert_id") is not None:
            await self.alert(team, {**payload, "post": True})
            return
        text, blocks = channel_notice(payload["event"], payload.get("data", {}))
        await client.chat_postMessage(
            channel=payload["channel"], text=text, blocks=blocks, unfurl_links=False
        )

    async def alert(self, team: TeamClient, payload: dict[str, Any]) -> None:
        """Post a connector alert and record its message, or update it in place (as cards)."""
        client = team.client
        view, channel, ts = await alerts.alert_view(self.ctx, int(payload["alert_id"]))
        text, blocks = alert_message(view)
        if ts is None:
            if not payload.get("post"):
                raise DeliveryError("alert not posted yet", retry_after=NOT_POSTED_YET)
            response = await client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, unfurl_links=False
            )
            await alerts.record_alert_posted(
                self.ctx, view.alert_id, str(response["channel"]), str(response["ts"])
            )
            return
        await client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)


class DmChannels:
    """Each person's DM channel with the bot, by Slack team (None: the one workspace's), the
    most recently used kept up to `limit`."""

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._channels: OrderedDict[tuple[str | None, str], str] = OrderedDict()

    def get(self, key: tuple[str | None, str]) -> str | None:
        channel = self._channels.get(key)
        if channel is not None:
            self._channels.move_to_end(key)
        return channel

    def remember(self, key: tuple[str | None, str], channel: str) -> str:
        self._channels[key] = channel
        self._channels.move_to_end(key)
        if len(self._channels) > self._limit:
            self._channels.popitem(last=False)
        return channel

    def forget(self, key: tuple[str | None, str]) -> None:
        self._channels.pop(key, None)


def _error_code(exc: SlackApiError) -> str:
    data = exc.response.data
    return str(data.get("error", "")) if isinstance(data, dict) else ""

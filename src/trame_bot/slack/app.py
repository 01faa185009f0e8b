"""Builds the Bolt app: settings passed explicitly, every listener registered, a catch-all for
what this version does not handle, and one last-resort error handler."""

from __future__ import annotations

import logging
import re
import secrets
from enum import StrEnum
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from trame_bot.config import Distributed, SlackMode
from trame_bot.services.context import Context
from trame_bot.slack import installation_store, oauth
from trame_bot.slack.ids import Action, Callback
from trame_bot.slack.listeners import commands, home, incidents, lifecycle, runs, workflows

log = logging.getLogger("trame_bot.slack")
ANYTHING = re.compile(".*")


def _other_than(ids: type[StrEnum]) -> re.Pattern[str]:
    """Any id but ours. Bolt hands a request to the next matching listener when the first
    has not acked within 3 s, so a catch-all must never match a slow but valid click."""
    known = "|".join(re.escape(i.value) for i in ids)
    return re.compile(rf"^(?!(?:{known})$).*")


class _TokenNotice(logging.Filter):
    """Bolt warns that the token is unused when given a client and SLACK_BOT_TOKEN is set:
    that is what we mean (the client carries the token and our base URL), so drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "will be unused" not in record.getMessage()


def build_bolt_app(ctx: Context, mode: SlackMode, client: AsyncWebClient) -> AsyncApp:
    """One workspace: `client` carries the bot token. Distributed: Bolt finds each request's
    team's token in our installations, through a token-less copy of `client` (same base URL,
    so the code exchange and token refreshes reach `SLACK_API_URL` as well)."""
    bolt_log = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _TokenNotice) for f in bolt_log.filters):
        bolt_log.addFilter(_TokenNotice())
    options: dict[str, Any] = {"client": client}
    if isinstance(mode, Distributed):
        ours = installation_store.token_less(client)
        flow, authorize = oauth.build_oauth(ctx, mode, ours)
        options = {"client": ours, "oauth_flow": flow, "authorize": authorize}
    app = AsyncApp(
        name="trame-bot",
        signing_secret=mode.signing_secret,
        # Ack leaves at once; the listener finishes in the background (Slack's 3 s budget).
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        **options,
    )
    for module in (commands, runs, workflows, incidents, home, lifecycle):
        module.register(app, ctx)
    _register_fallbacks(app)
    return app


def _register_fallbacks(app: AsyncApp) -> None:
    """Registered last: a stale button or an old form gets an answer, never a 404 from Bolt."""

    @app.action(_other_than(Action))
    async def unknown_action(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        channel = (body.get("channel") or {}).get("id")
        if channel:
            await client.chat_postEphemeral(
                channel=channel,
                user=body["user"]["id"],
                text="That button belongs to an older version of trame-bot; use `/trame help`.",
            )

    @app.view(_other_than(Callback))
    async def unknown_view(ack: AsyncAck) -> None:
        await ack()

    @app.event(ANYTHING)
    async def unknown_event() -> None:
        """Acknowledged, so Slack does not retry an event this version does not use."""

    @app.error
    async def last_resort(error: Exception, body: dict[str, Any]) -> None:
        ref = secrets.token_hex(4)
        log.error(
            "unhandled error in a Slack listener (ref %s, type %s)",
            ref,
            body.get("type"),
            exc_info=error,
        )

"""The card's buttons and the decline form: every click is re-checked by the service."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from trame_bot.domain.actors import Actor
from trame_bot.domain.approvals import CardChannel
from trame_bot.domain.enums import DeclineCategory, Verdict
from trame_bot.errors import InvalidInput, TrameError
from trame_bot.services import decisions, workspaces
from trame_bot.services.context import Context
from trame_bot.services.run_outcomes import AlreadyDecided
from trame_bot.slack.blocks.modals import (
    MIN_DECLINE_REASON,
    decline_modal,
    field_value,
    form_metadata,
)
from trame_bot.slack.errors import friendly
from trame_bot.slack.ids import Action, BlockId, Callback
from trame_bot.slack.team_scope import team_scope
from trame_bot.slack.text import user, when


def already_decided(exc: AlreadyDecided) -> str:
    by = f" by {user(exc.decided_by)}" if exc.decided_by else ""
    at = f" {when(exc.decided_at)}" if exc.decided_at else ""
    return f"This run was already {exc.state.value}{by}{at}."


def _card(ctx: Context, channel: str | None, context: AsyncBoltContext) -> CardChannel:
    """The card's channel, in the request's Slack team, decides the workspace: a button can
    never reach another workspace's run, nor another team's."""
    return CardChannel(channel or "", team_scope(ctx, context))


async def _workspace_of_channel(
    ctx: Context, channel: str | None, context: AsyncBoltContext
) -> str:
    """As `_card`, for a check before the decision (the decline button opens a form)."""
    card = _card(ctx, channel, context)
    found = await workspaces.workspace_key_for_channel(ctx, card.channel, card.team)
    if found is None:
        raise InvalidInput(decisions.CHANNEL_NOT_CONNECTED)
    return found


def _click(body: dict[str, Any]) -> tuple[str, str, str | None]:
    action = body["actions"][0]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id"
    )
    return str(body["user"]["id"]), str(action.get("value", "")), channel


def register(app: AsyncApp, ctx: Context) -> None:
    async def tell(client: AsyncWebClient, channel: str | None, who: str, text: str) -> None:
        if channel:
            await client.chat_postEphemeral(channel=channel, user=who, text=text)

    @app.action(Action.APPROVE)
    async def approve(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        # Record first, ack after: a 200 to Slack means the approval is committed, so a crash
        # between the two can never swallow a click the reviewer saw succeed. It takes ms.
        try:
            who, run_id, channel = _click(body)
        except InvalidInput:
            await ack()
            return
        try:
            await decisions.decide(
                ctx, run_id, Actor.slack(who), Verdict.APPROVE, card=_card(ctx, channel, context)
            )
        except AlreadyDecided as exc:
            await ack()
            await tell(client, channel, who, already_decided(exc))
            return
        except Exception as exc:
            await ack()
            await tell(client, channel, who, friendly(exc))
            return
        await ack()

    @app.action(Action.DECLINE)
    async def decline(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        try:
            who, run_id, channel = _click(body)
        except InvalidInput:
            return
        try:
            workspace = await _workspace_of_channel(ctx, channel, context)
            run, workflow = await decisions.check_decision(
                ctx, run_id, Actor.slack(who), Verdict.DECLINE, workspace_key=workspace
            )
            await client.views_open(
                trigger_id=body["trigger_id"],
                view=decline_modal(run.id, workflow.name, run.requested_by, channel),
            )
        except AlreadyDecided as exc:
            await tell(client, channel, who, already_decided(exc))
        except Exception as exc:
            await tell(client, channel, who, friendly(exc))

    @app.view(Callback.DECLINE)
    async def decline_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        who = str(body["user"]["id"])
        values = view.get("state", {}).get("values", {})
        reason = (field_value(values, BlockId.DECLINE_REASON, Action.DECLINE_REASON) or "").strip()
        category = field_value(values, BlockId.DECLINE_CATEGORY, Action.DECLINE_CATEGORY)
        if len(reason) < MIN_DECLINE_REASON:
            await ack(
                response_action="errors",
                errors={
                    BlockId.DECLINE_REASON.value: f"Say a bit more: at least {MIN_DECLINE_REASON} characters."
                },
            )
            return
        try:
            metadata = form_metadata(view)
            await decisions.decide(
                ctx,
                str(metadata.get("run_id", "")),
                Actor.slack(who),
                Verdict.DECLINE,
                reason=reason,
                category=_category(category),
                card=_card(ctx, metadata.get("channel"), context),
            )
        except AlreadyDecided as exc:
            text = f"This run was already {exc.state.value}" + (
                f" by {exc.decided_by}" if exc.decided_by else ""
            )
            await ack(response_action="errors", errors={BlockId.DECLINE_REASON.value: text + "."})
            return
        except Exception as exc:
            await ack(response_action="errors", errors={BlockId.DECLINE_REASON.value: _plain(exc)})
            return
        await ack()


def _category(value: str | None) -> DeclineCategory | None:
    try:
        return DeclineCategory(value) if value else None
    except ValueError:
        raise InvalidInput("choose one of the listed reasons") from None


def _plain(exc: Exception) -> str:
    """Modal field errors are plain text: no mrkdwn, no emoji prefix."""
    return (
        exc.message
        if isinstance(exc, TrameError)
        else "the form could not be read; close it and try again"
    )

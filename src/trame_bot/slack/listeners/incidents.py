"""The incident buttons: pause the workflows a broken connector affects, resume them from the
recovery notice, roll a workflow back from its go-live announcement. The button's value is
untrusted: the channel (in the request's team) decides the workspace, the services re-check
role, workspace and state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from trame_bot.domain.actors import Actor
from trame_bot.domain.alerts import parse_button_value
from trame_bot.errors import InvalidInput
from trame_bot.services import alerts, rollback, workspaces
from trame_bot.services.alerts import AlreadyActed
from trame_bot.services.context import Context
from trame_bot.slack.errors import friendly
from trame_bot.slack.ids import Action
from trame_bot.slack.team_scope import team_scope
from trame_bot.slack.text import code, escape, user, when


def _click(body: dict[str, Any]) -> tuple[str, str, str | None]:
    action = body["actions"][0]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id"
    )
    return str(body["user"]["id"]), str(action.get("value", "")), channel


async def _workspace(ctx: Context, channel: str | None, context: AsyncBoltContext) -> str:
    found = await workspaces.workspace_key_for_channel(ctx, channel or "", team_scope(ctx, context))
    if found is None:
        raise InvalidInput("this message's channel is not connected to a workspace any more")
    return found


def _alert_button(value: str) -> tuple[int, str]:
    try:
        return parse_button_value(value)
    except ValueError:
        raise InvalidInput("this button is not one of ours any more; nothing was changed") from None


def already_done(exc: AlreadyActed) -> str:
    at = f" {when(exc.acted_at)}" if exc.acted_at else ""
    return f"This was already done: {exc.verb} by {user(exc.acted_by)}{at}."


def rollback_text(done: rollback.RolledBack) -> str:
    name = f"*{escape(done.workflow_name)}*"
    if done.plan.action.value == "pause":
        fallback = "" if done.plan.structured else " (it had no structured rollback plan)"
        return f"↩️ {name} is rolled back: paused{fallback}; its pending runs were cancelled."
    off = ", ".join(code(t) for t in done.disabled)
    gone = (
        f" The plan also names {', '.join(code(t) for t in done.missing)}, which it no longer has."
        if done.missing
        else ""
    )
    return f"↩️ {name} is rolled back: triggers {off} are off.{gone}"


def _names(done: alerts.Acted) -> str:
    return ", ".join(f"*{escape(w.name)}*" for w in done.workflows) or "nothing (all were paused)"


def register(app: AsyncApp, ctx: Context) -> None:
    async def tell(client: AsyncWebClient, channel: str | None, who: str, text: str) -> None:
        if channel:
            await client.chat_postEphemeral(channel=channel, user=who, text=text)

    async def act_on_alert(
        body: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
        act: Callable[[str, int, str, Actor], Awaitable[alerts.Acted]],
        told: Callable[[alerts.Acted], str],
    ) -> None:
        """Both alert buttons: the service re-checks role, workspace and the connector."""
        who, value, channel = _click(body)
        try:
            alert_id, connector = _alert_button(value)
            workspace = await _workspace(ctx, channel, context)
            done = await act(workspace, alert_id, connector, Actor.slack(who))
            await tell(client, channel, who, told(done))
        except AlreadyActed as exc:
            await tell(client, channel, who, already_done(exc))
        except Exception as exc:
            await tell(client, channel, who, friendly(exc))

    def paused_text(done: alerts.Acted) -> str:
        late = (
            " The connector had recovered already; resume them when ready."
            if done.connector_health.value == "ok"
            else ""
        )
        return f"⏸️ Paused {_names(done)}.{late}"

    @app.action(Action.PAUSE_AFFECTED)
    async def pause_affected(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        await act_on_alert(
            body,
            client,
            context,
            lambda ws, alert, key, actor: alerts.pause_affected(ctx, ws, alert, key, actor),
            paused_text,
        )

    @app.action(Action.RESUME_PAUSED)
    async def resume_paused(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        await act_on_alert(
            body,
            client,
            context,
            lambda ws, alert, key, actor: alerts.resume_paused(ctx, ws, alert, key, actor),
            lambda done: f"▶️ Resumed {_names(done)}.",
        )

    @app.action(Action.ROLL_BACK)
    async def roll_back(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        who, value, channel = _click(body)
        try:
            workspace = await _workspace(ctx, channel, context)
            done = await rollback.roll_back(
                ctx, workspace, value, Actor.slack(who), why="from the go-live announcement"
            )
            await tell(client, channel, who, rollback_text(done))
        except Exception as exc:
            await tell(client, channel, who, friendly(exc))

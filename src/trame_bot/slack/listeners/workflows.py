"""The go-live form opened by `/trame promote <workflow> live`."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Status
from trame_bot.domain.rollback import plan_from
from trame_bot.errors import Forbidden, InvalidInput, TrameError
from trame_bot.services import workflow_status, workspaces
from trame_bot.services.context import Context
from trame_bot.slack.blocks.modals import checked_values, field_value, form_metadata
from trame_bot.slack.errors import friendly
from trame_bot.slack.ids import Action, BlockId, Callback
from trame_bot.slack.team_scope import team_scope

# Service field names → the form's blocks, so a refusal shows on the field it concerns.
FIELD_BLOCKS = {
    "signed_off_by": BlockId.SIGNED_OFF_BY,
    "sign_off_evidence": BlockId.EVIDENCE,
    "rollback_plan": BlockId.ROLLBACK_ACTION,
    "rollback_triggers": BlockId.ROLLBACK_TRIGGERS,
}


def register(app: AsyncApp, ctx: Context) -> None:
    @app.view(Callback.PROMOTE_LIVE)
    async def promote_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        values = view.get("state", {}).get("values", {})
        try:
            metadata = form_metadata(view)
            team = team_scope(ctx, context)
            if team is not None:
                # Distributed mode: the form's channel, in this request's team, must still
                # belong to the workspace the form names.
                found = await workspaces.workspace_key_for_channel(
                    ctx, str(metadata.get("channel", "")), team
                )
                if found is None or found != metadata.get("workspace"):
                    raise Forbidden("this form belongs to a workspace of another Slack team")
            await workflow_status.change_status(
                ctx,
                str(metadata.get("workspace", "")),
                str(metadata.get("workflow", "")),
                Status.LIVE,
                Actor.slack(str(body["user"]["id"])),
                sign_off=workflow_status.SignOff(
                    field_value(values, BlockId.SIGNED_OFF_BY, Action.SIGNED_OFF_BY) or "",
                    field_value(values, BlockId.EVIDENCE, Action.EVIDENCE) or "",
                ),
                rollback_plan=plan_from(
                    field_value(values, BlockId.ROLLBACK_ACTION, Action.ROLLBACK_ACTION),
                    checked_values(values, BlockId.ROLLBACK_TRIGGERS, Action.ROLLBACK_TRIGGERS),
                    field_value(values, BlockId.ROLLBACK_PLAN, Action.ROLLBACK_PLAN),
                ),
            )
        except InvalidInput as exc:
            errors = {
                FIELD_BLOCKS[f].value: text for f, text in exc.fields.items() if f in FIELD_BLOCKS
            }
            await ack(
                response_action="errors",
                errors=errors or {BlockId.SIGNED_OFF_BY.value: exc.message},
            )
            return
        except Exception as exc:
            message = (
                exc.message if isinstance(exc, TrameError) else friendly(exc).removeprefix("😬 ")
            )
            await ack(response_action="errors", errors={BlockId.SIGNED_OFF_BY.value: message})
            return
        await ack()

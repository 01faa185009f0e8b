"""Modals: the decline form (a reason is required) and the go-live sign-off form."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    CheckboxesElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from trame_bot.domain.approvals import MAX_REASON
from trame_bot.domain.pilot import GoLiveWarnings, PilotRecord
from trame_bot.domain.values import counted
from trame_bot.slack.blocks.notices import CATEGORY_LABELS
from trame_bot.slack.blocks.replies import pilot_lines
from trame_bot.slack.ids import Action, BlockId, Callback
from trame_bot.slack.text import clean, code, escape, truncate, user

MIN_DECLINE_REASON = 10


def decline_modal(
    run_id: str, workflow_name: str, requested_by: str | None, channel: str | None
) -> dict[str, Any]:
    metadata = json.dumps({"run_id": run_id, "channel": channel})
    view = View(
        type="modal",
        callback_id=Callback.DECLINE,
        private_metadata=metadata,
        title=PlainTextObject(text="Decline run"),
        submit=PlainTextObject(text="Decline"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(
                    text=truncate(
                        f"Decline the run of *{escape(workflow_name)}* requested by {user(requested_by)}? "
                        "The requester and the engine are told your reason.",
                        2900,
                    )
                )
            ),
            InputBlock(
                block_id=BlockId.DECLINE_CATEGORY,
                label=PlainTextObject(text="What is wrong?"),
                element=StaticSelectElement(
                    action_id=Action.DECLINE_CATEGORY,
                    placeholder=PlainTextObject(text="Choose a reason"),
                    options=[
                        Option(value=category.value, text=PlainTextObject(text=label))
                        for category, label in CATEGORY_LABELS.items()
                    ],
                ),
            ),
            InputBlock(
                block_id=BlockId.DECLINE_REASON,
                label=PlainTextObject(text="Tell the requester why"),
                element=PlainTextInputElement(
                    action_id=Action.DECLINE_REASON,
                    multiline=True,
                    min_length=MIN_DECLINE_REASON,
                    max_length=MAX_REASON,
                    placeholder=PlainTextObject(
                        text="The invoice batch includes last month's drafts…"
                    ),
                ),
            ),
            ContextBlock(elements=[MarkdownTextObject(text=f"Run {code(run_id)}")]),
        ],
    )
    return view.to_dict()


def promote_live_modal(
    workspace: str,
    workflow_key: str,
    workflow_name: str,
    channel: str,
    triggers: Sequence[str] = (),
    record: PilotRecord | None = None,
    warnings: GoLiveWarnings | None = None,
) -> dict[str, Any]:
    metadata = json.dumps({"workspace": workspace, "workflow": workflow_key, "channel": channel})
    view = View(
        type="modal",
        callback_id=Callback.PROMOTE_LIVE,
        private_metadata=metadata,
        title=PlainTextObject(text="Go live"),
        submit=PlainTextObject(text="Go live"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(
                    text=truncate(
                        f"Promote *{escape(workflow_name)}* to *live*: its runs will no longer wait "
                        "for approval. Record the client's sign-off and how to roll back.",
                        2900,
                    )
                )
            ),
            *_evidence_blocks(record, warnings),
            InputBlock(
                block_id=BlockId.SIGNED_OFF_BY,
                label=PlainTextObject(text="Who at the client signed off"),
                element=PlainTextInputElement(action_id=Action.SIGNED_OFF_BY, max_length=200),
            ),
            InputBlock(
                block_id=BlockId.EVIDENCE,
                label=PlainTextObject(text="Evidence of the sign-off"),
                element=PlainTextInputElement(
                    action_id=Action.EVIDENCE,
                    multiline=True,
                    max_length=2000,
                    placeholder=PlainTextObject(text="Link to the email or ticket"),
                ),
            ),
            *_rollback_inputs(triggers),
        ],
    )
    return view.to_dict()


def _evidence_blocks(
    record: PilotRecord | None, warnings: GoLiveWarnings | None
) -> list[SectionBlock]:
    """The warnings first, where the signer cannot miss them, then the pilot's record. They
    inform the sign-off and never block it: the service decides what may go live."""
    blocks = []
    if warnings:
        lines = ["⚠️ *Before the client signs off*"]
        if warnings.recent_declines:
            latest = warnings.recent_declines[0]
            lines.append(
                f"• The pilot declined {counted(len(warnings.recent_declines), 'run')} in the "
                f"last 7 days; the latest by {user(latest.by)}"
                + (f": “{escape(truncate(latest.reason, 300))}”" if latest.reason else "")
            )
        if warnings.too_few_approved:
            lines.append(
                f"• The pilot has {counted(warnings.approved, 'approved run')} of its current "
                f"plan; this workspace asks for at least {warnings.minimum_approved}."
            )
        blocks.append(
            SectionBlock(
                block_id=BlockId.GO_LIVE_WARNINGS,
                text=MarkdownTextObject(text=truncate("\n".join(lines), 2900)),
            )
        )
    if record is not None:
        blocks.append(
            SectionBlock(
                block_id=BlockId.PILOT_RECORD,
                text=MarkdownTextObject(text=truncate("\n".join(pilot_lines(record)), 2900)),
            )
        )
    return blocks


def _rollback_inputs(triggers: Sequence[str]) -> list[InputBlock]:
    """The structured rollback plan: pause, or disable triggers (offered when it has some),
    and notes. The `/trame rollback` command and the Roll back button carry it out."""
    pause = Option(value="pause", label="Pause the workflow")
    actions = [pause]
    if triggers:
        actions.append(Option(value="disable_triggers", label="Disable the chosen triggers"))
    blocks = [
        InputBlock(
            block_id=BlockId.ROLLBACK_ACTION,
            label=PlainTextObject(text="Rollback plan"),
            element=StaticSelectElement(
                action_id=Action.ROLLBACK_ACTION, options=actions, initial_option=pause
            ),
        )
    ]
    if triggers:
        blocks.append(
            InputBlock(
                block_id=BlockId.ROLLBACK_TRIGGERS,
                label=PlainTextObject(text="Triggers to disable"),
                optional=True,
                element=CheckboxesElement(
                    action_id=Action.ROLLBACK_TRIGGERS,
                    options=[
                        Option(value=truncate(t, 150), label=truncate(t, 75)) for t in triggers[:10]
                    ],
                ),
            )
        )
    blocks.append(
        InputBlock(
            block_id=BlockId.ROLLBACK_PLAN,
            label=PlainTextObject(text="Rollback notes"),
            optional=True,
            element=PlainTextInputElement(
                action_id=Action.ROLLBACK_PLAN, multiline=True, max_length=2000
            ),
        )
    )
    return blocks


def checked_values(values: dict[str, Any], block: BlockId, action: Action) -> list[str]:
    """The values of the boxes ticked in a checkboxes input."""
    state = values.get(block.value, {}).get(action.value, {})
    return [str(o.get("value", "")) for o in state.get("selected_options") or []]


def field_value(values: dict[str, Any], block: BlockId, action: Action) -> str | None:
    """A submitted value from `view.state.values`: text input or selected option."""
    state = values.get(block.value, {}).get(action.value, {})
    if state.get("type") == "static_select":
        selected = state.get("selected_option") or {}
        return selected.get("value")
    value = state.get("value")
    return None if value is None else clean(str(value))


def form_metadata(view: dict[str, Any]) -> dict[str, Any]:
    """The form's `private_metadata` as we wrote it; anything else is an empty dict (the
    service then refuses the unknown run or workflow)."""
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return metadata if isinstance(metadata, dict) else {}

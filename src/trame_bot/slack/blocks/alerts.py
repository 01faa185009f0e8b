"""Connector alerts with their buttons: pause the workflows that use a broken connector, and
resume them from the recovery notice; once acted on, the message says who did what, when."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from trame_bot.domain.alerts import AlertView, AlertWorkflow, button_value
from trame_bot.slack.blocks import Message, render
from trame_bot.slack.blocks.notices import connector_alert
from trame_bot.slack.ids import Action, BlockId
from trame_bot.slack.text import escape, truncate, user, when

LISTED = 15


def _names(workflows: tuple[AlertWorkflow, ...], limit: int = LISTED, width: int = 80) -> str:
    shown = ", ".join(escape(truncate(w.name, width)) for w in workflows[:limit])
    more = len(workflows) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _plain_names(workflows: tuple[AlertWorkflow, ...], limit: int = 8) -> str:
    shown = ", ".join(truncate(w.name, 30) for w in workflows[:limit])
    more = len(workflows) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, 2900)))


def _button(
    action: Action, label: str, view: AlertView, title: str, text: str, confirm: str
) -> ActionsBlock:
    return ActionsBlock(
        block_id=BlockId.ALERT_ACTIONS.value,
        elements=[
            ButtonElement(
                action_id=action.value,
                text=label,
                value=button_value(view.alert_id, view.connector),
                style="danger" if action is Action.PAUSE_AFFECTED else "primary",
                confirm=ConfirmObject(
                    title=truncate(title, 100),
                    text=PlainTextObject(text=truncate(text, 300)),
                    confirm=confirm,
                    deny="Cancel",
                ),
            )
        ],
    )


def alert_message(view: AlertView) -> Message:
    """The alert as it stands now: the same words as when raised, then its button or the
    record of what was done from it."""
    text, blocks = connector_alert(view.event, view.data)
    extra: list[Block] = []
    if view.event == "connector.needs_attention":
        extra = _outage_extra(view)
    else:
        extra = _recovery_extra(view)
    return text, blocks + render(extra)


def _outage_extra(view: AlertView) -> list[Block]:
    if view.acted_at is not None:
        done = (
            f"⏸️ {user(view.acted_by)} paused {_names(view.acted_on)} {when(view.acted_at)}."
            if view.acted_on
            else f"{user(view.acted_by)} pulled the brake {when(view.acted_at)}: "
            "every workflow using it was already paused."
        )
        return [ContextBlock(elements=[MarkdownTextObject(text=truncate(done, 2000))])]
    workflows = tuple(
        AlertWorkflow(str(w.get("key")), str(w.get("name")), str(w.get("status")))
        for w in view.data.get("workflows", [])
        if w.get("status") != "paused"
    )
    if not workflows:
        return []
    return [
        _button(
            Action.PAUSE_AFFECTED,
            "Pause affected workflows",
            view,
            f"Pause {len(workflows)} workflow{'s' if len(workflows) > 1 else ''}?",
            f"Pause {_plain_names(workflows)}. Their pending runs are cancelled; "
            "an admin resumes them.",
            "Pause them",
        )
    ]


def _recovery_extra(view: AlertView) -> list[Block]:
    if view.acted_at is not None:
        done = f"▶️ {user(view.acted_by)} resumed {_names(view.acted_on)} {when(view.acted_at)}."
        return [ContextBlock(elements=[MarkdownTextObject(text=truncate(done, 2000))])]
    if not view.to_resume:
        if view.paused_from_outage:
            note = "The workflows paused from the alert were changed since: nothing to resume."
            return [ContextBlock(elements=[MarkdownTextObject(text=note)])]
        return []
    return [
        _section(f"Paused from the alert and unchanged since: {_names(view.to_resume)}"),
        _button(
            Action.RESUME_PAUSED,
            "Resume them",
            view,
            f"Resume {len(view.to_resume)} workflow{'s' if len(view.to_resume) > 1 else ''}?",
            f"Resume {_plain_names(view.to_resume)}, each to the status it had.",
            "Resume them",
        ),
    ]

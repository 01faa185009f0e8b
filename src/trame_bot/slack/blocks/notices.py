"""Short messages: decision replies in a card's thread, DMs to requesters, channel notices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

from trame_bot.domain.enums import DeclineCategory
from trame_bot.domain.values import counted
from trame_bot.slack.blocks import Message, render
from trame_bot.slack.blocks.digest import digest_message
from trame_bot.slack.ids import Action, BlockId
from trame_bot.slack.text import code, escape, truncate, user

CATEGORY_LABELS = {
    DeclineCategory.WRONG_DATA: "Wrong data",
    DeclineCategory.WRONG_RECIPIENT: "Wrong recipient",
    DeclineCategory.BAD_TIMING: "Bad timing",
    DeclineCategory.NEEDS_CHANGES: "Needs changes",
    DeclineCategory.LOOKS_RISKY: "Looks risky",
    DeclineCategory.OTHER: "Other",
}

STATUS_VERBS = {
    "paused": "⏸️ paused",
    "live": "🚀 promoted to live",
    "pilot": "moved to pilot",
    "draft": "moved to draft",
}


def _message(text: str, context: str | None = None) -> Message:
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=truncate(text, 2900)))]
    if context:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(context, 2000))]))
    return truncate(text, 3000), render(blocks)


def _reason(data: Mapping[str, Any]) -> str:
    reason = data.get("reason")
    return f"\n>{escape(truncate(str(reason), 1500))}" if reason else ""


def thread_reply(event: str, data: Mapping[str, Any]) -> Message:
    """A reply under the card for each decision, expiry or cancellation."""
    if event == "run.decision":
        who = user(data.get("user"))
        if data.get("verdict") == "decline":
            category = data.get("category")
            label = f" ({CATEGORY_LABELS[DeclineCategory(category)]})" if category else ""
            return _message(f"❌ {who} declined{label}{_reason(data)}")
        progress = f"{data.get('approvals')} of {counted(int(data.get('required', 0)), 'approval')}"
        done = " — approved ✅" if data.get("state") == "approved" else ""
        return _message(f"👍 {who} approved ({progress}){done}{_reason(data)}")
    if event == "run.expired":
        return _message(f"⌛ Expired: nobody decided in time{_reason(data)}")
    if event == "run.cancelled":
        return _message(f"🚫 Cancelled{_reason(data)}")
    if event == "run.reminder":
        waiting = " ".join(user(u) for u in data.get("reviewers", [])[:20])
        return _message(f"⏰ Still waiting for a decision {waiting}".rstrip())
    return _message(escape(event))


def outcome_dm(event: str, data: Mapping[str, Any]) -> Message:
    """Tells the requester how their run ended."""
    name = f"*{escape(truncate(str(data.get('name', '')), 150))}*"
    state = data.get("state")
    by = f" by {user(data.get('decided_by'))}" if data.get("decided_by") else ""
    headline = {
        "approved": f"✅ Your run of {name} was approved{by}. It can go ahead.",
        "declined": f"❌ Your run of {name} was declined{by}.",
        "expired": f"⌛ Your run of {name} expired before anyone decided. Request it again if it is still needed.",
        "cancelled": f"🚫 Your run of {name} was cancelled{by}.",
    }.get(str(state), f"Your run of {name} is {escape(str(state))}.")
    return _message(headline + _reason(data), f"run {code(str(data.get('run_id', '')))}")


def channel_notice(event: str, data: Mapping[str, Any]) -> Message:
    """Announcements in a workspace channel (status changes, connector alerts)."""
    if event == "workflow.status_changed":
        verb = STATUS_VERBS.get(
            str(data.get("after")), f"moved to {escape(str(data.get('after')))}"
        )
        if data.get("before") == "paused":
            verb = f"▶️ resumed ({escape(str(data.get('after')))})"
        who = user(data.get("user") or data.get("actor"))
        name = escape(truncate(str(data.get("name", data.get("workflow"))), 150))
        text, blocks = _message(
            f"{who} {verb} *{name}*{_reason(data)}", f"was {escape(str(data.get('before')))}"
        )
        if data.get("after") == "live":
            blocks += render([_roll_back_button(str(data.get("workflow")), name)])
        return text, blocks
    if event == "workflow.rolled_back":
        who = user(data.get("user") or data.get("actor"))
        name = escape(truncate(str(data.get("name", data.get("workflow"))), 150))
        off = ", ".join(code(str(t)) for t in data.get("disabled", [])[:20])
        return _message(f"↩️ {who} rolled back *{name}*: triggers {off} are off{_reason(data)}")
    if event in ("connector.needs_attention", "connector.recovered"):
        return connector_alert(event, data)
    if event == "digest":
        return digest_message(data)
    return _message(escape(event))


def _roll_back_button(workflow: str, name: str) -> ActionsBlock:
    """On a go-live announcement: carry out the rollback plan recorded at sign-off."""
    return ActionsBlock(
        block_id=BlockId.ROLLBACK_BUTTON.value,
        elements=[
            ButtonElement(
                action_id=Action.ROLL_BACK.value,
                text="Roll back",
                value=truncate(workflow, 2000),
                style="danger",
                confirm=ConfirmObject(
                    title="Roll back?",
                    text=PlainTextObject(
                        text=truncate(
                            f"Carry out the rollback plan of {name}: pause it, or disable the "
                            "triggers its plan names.",
                            300,
                        )
                    ),
                    confirm="Roll back",
                    deny="Cancel",
                ),
            )
        ],
    )


def connector_alert(event: str, data: Mapping[str, Any]) -> Message:
    connector = code(str(data.get("connector")))
    workflows = data.get("workflows", [])
    affected = ", ".join(
        f"{escape(truncate(str(w.get('name')), 80))} ({w.get('status')})" for w in workflows[:15]
    )
    if len(workflows) > 15:
        affected += f" and {len(workflows) - 15} more"
    if event == "connector.recovered":
        return _message(
            f"✅ Connector {connector} is healthy again.",
            f"Affects: {affected}" if affected else None,
        )
    error = f"\n>{escape(truncate(str(data['error']), 500))}" if data.get("error") else ""
    return _message(
        f"⚠️ Connector {connector} needs attention: runs that use it are refused until it is "
        f"fixed. Reconnect it in Trame → Settings → Connectors.{error}",
        f"Affects: {affected}" if affected else "No workflow uses it yet.",
    )

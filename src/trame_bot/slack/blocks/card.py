"""The approval card: what a run will do, who asked, and the buttons to decide it."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from trame_bot.domain.enums import Access, Health, RunState, Source, Verdict
from trame_bot.domain.values import counted
from trame_bot.domain.views import RunCard, StepView
from trame_bot.slack.blocks import Message, render
from trame_bot.slack.ids import Action, BlockId
from trame_bot.slack.text import code, escape, short_fingerprint, truncate, user, when

SECTION_LIMIT = 2900
STEP_TEXT_BUDGET = 6000
"""Characters of step lines per card: with the rest, well under Slack's ~13k block text."""
MAX_STEP_NAME = 120
MAX_DECISIONS_SHOWN = 8

OUTCOME = {
    RunState.APPROVED: "✅ Approved",
    RunState.DECLINED: "❌ Declined",
    RunState.EXPIRED: "⌛ Expired",
    RunState.CANCELLED: "🚫 Cancelled",
    RunState.REJECTED: "⛔ Rejected",
}


def approval_card(card: RunCard) -> Message:
    title = card.workflow_name
    if card.state is RunState.PENDING:
        header = f"Approval needed: {title}"
    else:
        header = f"{OUTCOME[card.state]}: {title}"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=truncate(header, 150), emoji=True)),
        SectionBlock(fields=_facts(card)),
        *_steps(card.steps),
    ]
    notes = _notes(card)
    if notes:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=n) for n in notes]))
    blocks.append(DividerBlock())
    if card.decisions:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_decisions(card))]))
    if card.state is RunState.PENDING:
        blocks.append(_buttons(card))
    else:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_outcome(card))))
    return _fallback(card), render(blocks)


def _facts(card: RunCard) -> list[MarkdownTextObject]:
    source = "manual" if card.source is Source.MANUAL else f"trigger {code(card.trigger or '?')}"
    facts = [
        f"*Workflow*\n{code(truncate(card.workflow_key, 100))} ({card.workflow_status.value}"
        + (", production)" if card.production else ")"),
        f"*Requested by*\n{user(card.requested_by)}",
        f"*Source*\n{source}",
        f"*Approvals*\n{card.approvals} of {card.required_approvals}",
        f"*Fingerprint*\n{code(short_fingerprint(card.fingerprint))}",
    ]
    if card.expires_at and card.state is RunState.PENDING:
        facts.append(f"*Expires*\n{when(card.expires_at)}")
    if card.reviewers:
        names = ", ".join(user(r) for r in card.reviewers[:10])
        more = f" and {len(card.reviewers) - 10} more" if len(card.reviewers) > 10 else ""
        facts.append(f"*Reviewers*\n{truncate(names + more, 1900)}")
    return [MarkdownTextObject(text=f) for f in facts]


def _step_line(number: int, step: StepView) -> str:
    flags = []
    if step.access is Access.WRITE:
        flags.append("✏️ *write*")
    if step.health is None:
        flags.append("⛔ not a connector of this workspace")
    elif step.health is not Health.OK:
        flags.append(f"⚠️ connector {step.health.value.replace('_', ' ')}")
    if step.scopes_widened:
        flags.append("⚠️ scopes widened since requested")
    line = (
        f"{number}. {escape(truncate(step.name, MAX_STEP_NAME))} — {code(truncate(step.tool, 80))}"
        f" via {code(truncate(step.connector, 80))}"
    )
    return line + (" · " + " · ".join(flags) if flags else "")


def _steps(steps: tuple[StepView, ...]) -> list[Block]:
    """Step lines in sections under the per-section limit, summarising what does not fit."""
    sections: list[Block] = []
    current = f"*Planned steps ({len(steps)})*"
    used = 0
    shown = 0
    for number, step in enumerate(steps, start=1):
        line = _step_line(number, step)
        if used + len(line) > STEP_TEXT_BUDGET:
            break
        if len(current) + 1 + len(line) > SECTION_LIMIT:
            sections.append(SectionBlock(text=MarkdownTextObject(text=current)))
            current = ""
        current = f"{current}\n{line}" if current else line
        used += len(line)
        shown += 1
    hidden = steps[shown:]
    if hidden:
        writes = sum(1 for s in hidden if s.access is Access.WRITE)
        unhealthy = sum(1 for s in hidden if s.health is not Health.OK)
        summary = f"_…and {len(hidden)} more steps: {writes} with write access"
        summary += f", {unhealthy} on unhealthy or unknown connectors_" if unhealthy else "_"
        if len(current) + 1 + len(summary) > SECTION_LIMIT:
            sections.append(SectionBlock(text=MarkdownTextObject(text=current)))
            current = summary
        else:
            current = f"{current}\n{summary}"
    sections.append(SectionBlock(text=MarkdownTextObject(text=current)))
    return sections


def _notes(card: RunCard) -> list[str]:
    notes = []
    if card.details:
        shown = list(card.details.items())[:10]
        details = ", ".join(f"{escape(truncate(k, 60))}: {code(v)}" for k, v in shown)
        more = f" (+{len(card.details) - 10} more)" if len(card.details) > 10 else ""
        notes.append(truncate(f"🔒 *Details* {details}{more}", 2000))
    for warning in card.prompt_warnings[:3]:
        notes.append(f"⚠️ {warning}: sensitive values belong in required details")
    return notes


def _decisions(card: RunCard) -> str:
    lines = []
    for d in card.decisions[-MAX_DECISIONS_SHOWN:]:
        verb = "approved" if d.verdict is Verdict.APPROVE else "declined"
        reason = f": {escape(truncate(d.reason, 150))}" if d.reason else ""
        lines.append(f"{user(d.user)} {verb} {when(d.at)}{reason}")
    earlier = len(card.decisions) - MAX_DECISIONS_SHOWN
    prefix = f"_{earlier} earlier decisions_\n" if earlier > 0 else ""
    return truncate(prefix + "\n".join(lines), 2900)


def _buttons(card: RunCard) -> ActionsBlock:
    confirm = None
    if card.production:
        confirm = ConfirmObject(
            title="Approve a production run?",
            text=truncate(
                f"{escape(card.workflow_name)} is marked production: approving lets it run "
                f"{counted(len(card.steps), 'step')} for the client.",
                300,
            ),
            confirm="Approve",
            deny="Cancel",
        )
    return ActionsBlock(
        block_id=BlockId.RUN_ACTIONS,
        elements=[
            ButtonElement(
                text="Approve",
                action_id=Action.APPROVE,
                value=card.run_id,
                style="primary",
                confirm=confirm,
            ),
            ButtonElement(
                text="Decline", action_id=Action.DECLINE, value=card.run_id, style="danger"
            ),
        ],
    )


def _outcome(card: RunCard) -> str:
    text = f"*{OUTCOME[card.state]}*"
    if card.decided_by:
        text += f" by {user(card.decided_by)}"
    if card.decided_at:
        text += f" {when(card.decided_at)}"
    if card.reason and card.state is not RunState.APPROVED:
        text += f"\n>{escape(truncate(card.reason, 1500))}"
    return truncate(text, 2900)


def _fallback(card: RunCard) -> str:
    name = escape(truncate(card.workflow_name, 150))
    if card.state is RunState.PENDING:
        return (
            f"Approval needed: {name} ({card.workflow_status.value}), "
            f"{counted(len(card.steps), 'step')}, requested by {user(card.requested_by)} — "
            f"{card.approvals} of {counted(card.required_approvals, 'approval')}"
        )
    return f"{OUTCOME[card.state]}: {name}" + (
        f" by {user(card.decided_by)}" if card.decided_by else ""
    )

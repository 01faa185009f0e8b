"""Who reviews a run, when it is decided, when it expires (docs/governance.md, Approvals)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from trame_bot.domain.enums import RunState, Verdict
from trame_bot.errors import Forbidden, InvalidInput

MAX_REASON = 2000


@dataclass(frozen=True)
class CardChannel:
    """Where a click or a form came from: the card's channel, in the request's Slack team
    (None in one-workspace mode). The run must be of the workspace that channel belongs to
    (`store.channel.workspace_key`), so a button never reaches another workspace's run."""

    channel: str
    team: str | None


def check_reviewer(
    user: str,
    verdict: Verdict,
    *,
    requester: str | None,
    named_reviewers: Collection[str],
    is_member: bool,
    allow_self_approval: bool,
) -> None:
    """Named reviewers, when the workflow has them, are the only reviewers; they need not be
    members (a client's reviewer often is not). Otherwise every member reviews. Only approving
    one's own run is restricted: a requester may always decline (withdraw) it if they review.
    """
    if named_reviewers:
        if user not in named_reviewers:
            raise Forbidden("only the workflow's named reviewers decide its runs")
    elif not is_member:
        raise Forbidden("only members of this workspace decide its runs")
    if verdict is Verdict.APPROVE and user == requester and not allow_self_approval:
        raise Forbidden("you requested this run, so someone else must approve it")


def clean_reason(verdict: Verdict, reason: str | None) -> str | None:
    """A decline needs a reason; an approval may carry a note."""
    text = (reason or "").strip()
    if verdict is Verdict.DECLINE and not text:
        raise InvalidInput("declining needs a reason", {"reason": "say why the run is declined"})
    if len(text) > MAX_REASON:
        raise InvalidInput(
            f"the reason is too long ({len(text)} characters; at most {MAX_REASON})",
            {"reason": f"at most {MAX_REASON} characters"},
        )
    return text or None


def outcome_after(verdict: Verdict, approvals: int, required: int) -> RunState:
    """One decline vetoes; `required` distinct approvals approve; otherwise still pending."""
    if verdict is Verdict.DECLINE:
        return RunState.DECLINED
    return RunState.APPROVED if approvals >= required else RunState.PENDING


def expiry(requested_at: datetime, ttl: timedelta) -> datetime:
    return requested_at + ttl


def reminder_due(
    requested_at: datetime, delay: timedelta, now: datetime, *, reminded: bool
) -> bool:
    return not reminded and now >= requested_at + delay

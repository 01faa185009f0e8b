"""Every action, block and callback id in one place, so builders and listeners cannot drift."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    APPROVE = "run_approve"
    DECLINE = "run_decline"
    DECLINE_CATEGORY = "decline_category"
    DECLINE_REASON = "decline_reason"
    SIGNED_OFF_BY = "signed_off_by"
    EVIDENCE = "sign_off_evidence"
    ROLLBACK_PLAN = "rollback_plan"


class BlockId(StrEnum):
    RUN_ACTIONS = "run_actions"
    DECLINE_CATEGORY = "decline_category"
    DECLINE_REASON = "decline_reason"
    SIGNED_OFF_BY = "signed_off_by"
    EVIDENCE = "sign_off_evidence"
    ROLLBACK_PLAN = "rollback_plan"


class Callback(StrEnum):
    DECLINE = "decline_run"
    PROMOTE_LIVE = "promote_live"

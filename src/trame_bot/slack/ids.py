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
    ROLLBACK_ACTION = "rollback_action"
    ROLLBACK_TRIGGERS = "rollback_triggers"
    PAUSE_AFFECTED = "alert_pause_affected"
    RESUME_PAUSED = "alert_resume_paused"
    ROLL_BACK = "workflow_roll_back"


class BlockId(StrEnum):
    RUN_ACTIONS = "run_actions"
    DECLINE_CATEGORY = "decline_category"
    DECLINE_REASON = "decline_reason"
    SIGNED_OFF_BY = "signed_off_by"
    EVIDENCE = "sign_off_evidence"
    ROLLBACK_PLAN = "rollback_plan"
    ROLLBACK_ACTION = "rollback_action"
    ROLLBACK_TRIGGERS = "rollback_triggers"
    ALERT_ACTIONS = "alert_actions"
    ROLLBACK_BUTTON = "rollback_button"
    GO_LIVE_WARNINGS = "go_live_warnings"
    PILOT_RECORD = "pilot_record"


class Callback(StrEnum):
    DECLINE = "decline_run"
    PROMOTE_LIVE = "promote_live"

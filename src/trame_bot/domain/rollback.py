"""The rollback plan recorded at go-live: pause the workflow, or disable named triggers, with
free-text notes. Plans written before it was structured were free text: they mean "pause"."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trame_bot.errors import InvalidInput

MAX_NOTES = 2000


class RollbackAction(StrEnum):
    PAUSE = "pause"
    DISABLE_TRIGGERS = "disable_triggers"


@dataclass(frozen=True)
class RollbackPlan:
    action: RollbackAction
    triggers: tuple[str, ...] = ()
    notes: str = ""
    structured: bool = True
    """False for a free-text plan from before plans were structured (it falls back to pause)."""

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action.value, "triggers": list(self.triggers), "notes": self.notes}

    def stored(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False)

    def describe(self) -> str:
        if self.action is RollbackAction.DISABLE_TRIGGERS:
            return f"disable triggers {', '.join(self.triggers)}"
        return "pause the workflow"


def read_stored(text: str | None) -> RollbackPlan:
    """The plan a workflow keeps: structured JSON, or old free text (pause, text as notes);
    none at all also means pause."""
    if not text:
        return RollbackPlan(RollbackAction.PAUSE, structured=False)
    try:
        raw = json.loads(text)
        if isinstance(raw, dict) and "action" in raw:
            return plan_from(raw.get("action"), raw.get("triggers") or (), raw.get("notes"))
    except (ValueError, InvalidInput):
        pass
    return RollbackPlan(RollbackAction.PAUSE, notes=text, structured=False)


def plan_from(action: Any, triggers: Iterable[Any], notes: Any) -> RollbackPlan:
    """A plan from what someone gave (a form, the API, the CLI), refused with the reason."""
    try:
        chosen = RollbackAction(str(action or RollbackAction.PAUSE.value))
    except ValueError:
        raise InvalidInput(
            "a rollback plan pauses the workflow or disables triggers",
            {"rollback_plan": "action: pause or disable_triggers"},
        ) from None
    keys = tuple(dict.fromkeys(str(t).strip().lower() for t in triggers if str(t).strip()))
    if chosen is RollbackAction.DISABLE_TRIGGERS and not keys:
        raise InvalidInput(
            "a rollback plan that disables triggers must name at least one",
            {"rollback_triggers": "choose the triggers to disable"},
        )
    if chosen is RollbackAction.PAUSE and keys:
        raise InvalidInput(
            "a rollback plan that pauses the workflow names no triggers",
            {"rollback_triggers": "leave empty, or choose to disable triggers"},
        )
    text = str(notes or "").strip()
    if len(text) > MAX_NOTES:
        raise InvalidInput(
            f"the rollback notes are too long (at most {MAX_NOTES} characters)",
            {"rollback_plan": f"at most {MAX_NOTES} characters"},
        )
    return RollbackPlan(chosen, keys, text)


def check_triggers(plan: RollbackPlan, known: Sequence[str]) -> None:
    unknown = [t for t in plan.triggers if t not in known]
    if unknown:
        has = ", ".join(known) or "none"
        raise InvalidInput(
            f"the rollback plan names triggers the workflow does not have: "
            f"{', '.join(unknown)} (it has: {has})",
            {"rollback_triggers": f"unknown: {', '.join(unknown)}"},
        )

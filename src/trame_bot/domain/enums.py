"""The vocabulary of the domain. Stored as strings, so values never change once released."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    DRAFT = "draft"
    PILOT = "pilot"
    LIVE = "live"
    PAUSED = "paused"


class Role(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_ROLE_RANK = {Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Source(StrEnum):
    MANUAL = "manual"
    TRIGGER = "trigger"


class RunState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self is not RunState.PENDING


class Verdict(StrEnum):
    """What a reviewer says about a run."""

    APPROVE = "approve"
    DECLINE = "decline"


class Access(StrEnum):
    READ = "read"
    WRITE = "write"


class Health(StrEnum):
    OK = "ok"
    NEEDS_ATTENTION = "needs_attention"
    DISCONNECTED = "disconnected"


class TriggerKind(StrEnum):
    SCHEDULE = "schedule"
    WEBHOOK = "webhook"
    EVENT = "event"


class DeclineCategory(StrEnum):
    WRONG_DATA = "wrong_data"
    WRONG_RECIPIENT = "wrong_recipient"
    BAD_TIMING = "bad_timing"
    NEEDS_CHANGES = "needs_changes"
    LOOKS_RISKY = "looks_risky"
    OTHER = "other"

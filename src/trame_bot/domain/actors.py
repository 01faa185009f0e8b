"""Who does something: the name the audit log records and the person whose role applies."""

from __future__ import annotations

from dataclasses import dataclass

from trame_bot.domain.enums import Role


@dataclass(frozen=True)
class Actor:
    label: str
    """`slack:U…`, `api:<key name>`, `cli` or `system`."""
    user: str | None = None
    """The Slack user whose workspace role applies, when there is one."""
    authority: Role | None = None
    """The role that applies when there is no user: operators (CLI, jobs) act as owners,
    an API key as a member."""

    @classmethod
    def slack(cls, user: str) -> Actor:
        return cls(f"slack:{user}", user)

    @classmethod
    def api(cls, key_name: str, user: str | None = None) -> Actor:
        return cls(f"api:{key_name}", user, None if user else Role.MEMBER)

    @classmethod
    def cli(cls, user: str | None = None) -> Actor:
        return cls("cli", user, None if user else Role.OWNER)

    @classmethod
    def system(cls) -> Actor:
        return cls("system", None, Role.OWNER)

    @property
    def audit_name(self) -> str:
        if self.user is None or self.label == f"slack:{self.user}":
            return self.label
        return f"{self.label} as slack:{self.user}"

    @property
    def requester(self) -> str:
        """How a run request names who asked for it."""
        return self.user or self.label

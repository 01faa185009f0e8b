"""The tables as typed SQLAlchemy models."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from trame_bot.domain.enums import (
    Health,
    Role,
    RunState,
    Source,
    Status,
    TriggerKind,
    Verdict,
)
from trame_bot.store import audit_spelling, partial

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite (which keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (read by SQLAlchemy at class creation)
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        list[str]: JSON(),
        Status: _enum(Status),
        Role: _enum(Role),
        RunState: _enum(RunState),
        Source: _enum(Source),
        Health: _enum(Health),
        TriggerKind: _enum(TriggerKind),
        Verdict: _enum(Verdict),
    }


def table(entity: type[Base]) -> Table:
    """The entity's Core table, for statements without the ORM (mypy knows `__table__` only
    as a FromClause)."""
    return cast(Table, entity.__table__)


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    slack_team_id: Mapped[str | None] = mapped_column(String(32))
    approvals_channel: Mapped[str] = mapped_column(String(32), unique=True)
    ops_channel: Mapped[str | None] = mapped_column(String(32), index=True)
    """Indexed like `approvals_channel`: a command's channel is looked up as either."""
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    digest_time: Mapped[str] = mapped_column(String(5), default="09:00")
    approval_ttl_seconds: Mapped[int] = mapped_column(default=24 * 3600)
    reminder_after_seconds: Mapped[int] = mapped_column(default=4 * 3600)
    allow_self_approval: Mapped[bool] = mapped_column(default=False)
    regulated: Mapped[bool] = mapped_column(default=False)
    min_approved_pilot_runs: Mapped[int] = mapped_column(default=1, server_default="1")
    """Approved pilot runs of the current plan below which the go-live form warns."""
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]

    @property
    def alerts_channel(self) -> str:
        return self.ops_channel or self.approvals_channel


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("workspace_id", "slack_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    slack_user_id: Mapped[str] = mapped_column(String(32), index=True)
    role: Mapped[Role]
    created_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Connector(Base):
    __tablename__ = "connectors"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    toolkit: Mapped[str] = mapped_column(String(100))
    account: Mapped[str] = mapped_column(String(300), unique=True)
    scopes: Mapped[list[str]]
    health: Mapped[Health] = mapped_column(default=Health.OK)
    health_since: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_checked_at: Mapped[datetime | None]
    last_reported_at: Mapped[datetime | None]
    health_url: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    probing_until: Mapped[datetime | None]
    """A probe's lease: no two probes of one connector run at once, in any process."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Workflow(Base):
    __tablename__ = "workflows"
    __table_args__ = (
        UniqueConstraint("workspace_id", "key"),
        Index("ix_workflows_workspace_id_status_key", "workspace_id", "status", "key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[Status]
    version: Mapped[int] = mapped_column(default=1)
    steps: Mapped[list[Any]]
    fingerprint: Mapped[str] = mapped_column(String(64))
    """Of the plan and version (`domain.plan.fingerprint`), kept with them by
    `services.workflows`: what a pilot's record selects its runs by, in SQL."""
    reviewers: Mapped[list[str]]
    required_approvals: Mapped[int] = mapped_column(default=1)
    required_details: Mapped[dict[str, Any]]
    prompt: Mapped[str] = mapped_column(Text, default="")
    production: Mapped[bool] = mapped_column(default=False)
    status_before_pause: Mapped[Status | None]
    signed_off_by: Mapped[str | None] = mapped_column(String(200))
    sign_off_evidence: Mapped[str | None] = mapped_column(Text)
    rollback_plan: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    triggers: Mapped[list[Trigger]] = relationship(
        lazy="raise", order_by="Trigger.id", cascade="all, delete-orphan"
    )


class Trigger(Base):
    __tablename__ = "triggers"
    __table_args__ = (UniqueConstraint("workflow_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[TriggerKind]
    enabled: Mapped[bool] = mapped_column(default=True)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key"),
        Index("ix_runs_state_expires_at", "state", "expires_at"),
        Index("ix_runs_workflow_id_state", "workflow_id", "state"),
        Index("ix_runs_workflow_id_fingerprint", "workflow_id", "fingerprint"),
        Index("ix_runs_pending", "workspace_id", **partial.where("state", "pending")),
        Index(
            "ix_runs_declined", "workspace_id", "decided_at", **partial.where("state", "declined")
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    workflow_version: Mapped[int]
    workflow_status: Mapped[Status]
    """The workflow's status when the run was requested (a pilot run counts toward go-live)."""
    source: Mapped[Source]
    trigger_key: Mapped[str | None] = mapped_column(String(100))
    requested_by: Mapped[str | None] = mapped_column(String(100))
    plan: Mapped[list[Any]]
    fingerprint: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]]
    state: Mapped[RunState]
    reason: Mapped[str | None] = mapped_column(Text)
    required_approvals: Mapped[int]
    approvals: Mapped[int] = mapped_column(default=0)
    reviewers: Mapped[list[str]]
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(100))
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))


class Decision(Base):
    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("run_id", "user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    user: Mapped[str] = mapped_column(String(100))
    verdict: Mapped[Verdict]
    reason: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime]


class Digest(Base):
    """One row per workspace and local date: the daily digest is sent once, whoever sends it."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("workspace_id", "local_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    local_date: Mapped[str] = mapped_column(String(10))
    sent_at: Mapped[datetime]


class ConnectorAlert(Base):
    """A connector alert posted in the ops channel, and what was done from its button: the
    message's `slack_ts` lets it be updated in place; `acted_*` say who paused (an outage
    alert) or resumed (a recovery notice) which workflows, and when."""

    __tablename__ = "connector_alerts"
    __table_args__ = (
        Index("ix_connector_alerts_connector_id", "connector_id"),
        Index("ix_connector_alerts_outage_id", "outage_id"),
        Index("ix_connector_alerts_workspace_id_id", "workspace_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    connector_id: Mapped[int] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    outage_id: Mapped[int | None] = mapped_column(
        ForeignKey("connector_alerts.id", ondelete="SET NULL")
    )
    """On a recovery notice: the outage alert it closes."""
    data: Mapped[dict[str, Any]]
    channel: Mapped[str] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    acted_by: Mapped[str | None] = mapped_column(String(200))
    acted_at: Mapped[datetime | None]
    acted_on: Mapped[list[Any] | None]
    """[{key, name, before}] of the workflows paused (or resumed) from the button."""


class AuditEvent(Base):
    """Append only: no code path updates or deletes a row (PostgreSQL refuses it by trigger)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("workspace_id", "seq"),
        Index("ix_audit_events_entity", "workspace_id", "entity_type", "entity_id", "at"),
        Index("ix_audit_events_workspace_id_at", "workspace_id", "at"),
        Index(
            audit_spelling.INDEX,
            "workspace_id",
            "seq",
            sqlite_where=audit_spelling.clause(audit_spelling.SQLITE),
            postgresql_where=audit_spelling.clause(audit_spelling.POSTGRES),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    data: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    encoded: Mapped[bytes] = mapped_column(LargeBinary)
    """The bytes `hash` covers (`encoded_link`), kept so that verify only hashes; the index
    above lists the rows whose columns do not spell them (`store.audit_spelling`)."""


class AuditHead(Base):
    """The last link of a workspace's chain; its row lock serializes appends on PostgreSQL."""

    __tablename__ = "audit_heads"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class OutboxMessage(Base):
    """An outward effect (Slack message, webhook) written with the change that causes it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_outbox_failed", "workspace_id", **partial.where("state", "failed")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class SlackInstallation(Base):
    """One Slack team that installed the app by OAuth (distributed mode). Tokens are sealed
    (see `vault.py`): the database never holds one in clear."""

    __tablename__ = "slack_installations"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32), unique=True)
    team_name: Mapped[str] = mapped_column(String(200))
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    app_id: Mapped[str | None] = mapped_column(String(32))
    bot_user_id: Mapped[str | None] = mapped_column(String(32))
    bot_id: Mapped[str | None] = mapped_column(String(32))
    bot_scopes: Mapped[str | None] = mapped_column(Text)
    bot_token: Mapped[str] = mapped_column(Text)
    bot_refresh_token: Mapped[str | None] = mapped_column(Text)
    bot_token_expires_at: Mapped[datetime | None]
    installed_by: Mapped[str | None] = mapped_column(String(32))
    installed_at: Mapped[datetime]
    disconnected_at: Mapped[datetime | None]
    """Set when Slack said the app is gone (uninstalled, tokens revoked, a dead token);
    the team's messages wait in the outbox until a new install clears it."""
    disconnected_reason: Mapped[str | None] = mapped_column(String(64))


class InstallGrant(Base):
    """An operator's single-use, expiring permission to bind one Slack team to a workspace
    (`trame-bot workspace install-link`)."""

    __tablename__ = "install_grants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_team: Mapped[str | None] = mapped_column(String(32))


class OAuthState(Base):
    """The OAuth `state` of one install attempt, tied to the grant it started from."""

    __tablename__ = "oauth_states"

    state: Mapped[str] = mapped_column(String(100), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("install_grants.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None]

"""Creating and configuring workspaces (one per client), their members and API keys."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain import values
from trame_bot.domain.actors import Actor
from trame_bot.domain.changes import changed_fields
from trame_bot.domain.enums import Role
from trame_bot.domain.roles import check_role_change
from trame_bot.errors import Conflict, Forbidden, InvalidInput, NotFound
from trame_bot.services.access import require, role_of
from trame_bot.services.context import Context
from trame_bot.store import audit as audit_store
from trame_bot.store import channel as channel_store
from trame_bot.store import workspaces as store
from trame_bot.store.models import ApiKey, Member, Workspace
from trame_bot.store.workspaces import KeyHolder

API_KEY_PREFIX = "trame_"


@dataclass(frozen=True)
class WorkspaceSettings:
    """A field left None keeps its value; an empty string clears an optional one."""

    name: str | None = None
    slack_team_id: str | None = None
    approvals_channel: str | None = None
    ops_channel: str | None = None
    timezone: str | None = None
    digest_time: str | None = None
    approval_ttl: timedelta | None = None
    reminder_after: timedelta | None = None
    regulated: bool | None = None
    allow_self_approval: bool | None = None
    min_approved_pilot_runs: int | None = None
    webhook_url: str | None = None


@dataclass(frozen=True)
class Created:
    workspace: Workspace
    webhook_secret: str | None
    """Shown once, when a webhook URL is first set: receivers need it to check signatures."""


def _columns(settings: WorkspaceSettings) -> dict[str, Any]:
    """Validated column values for the fields that are set."""
    out: dict[str, Any] = {}
    for field in fields(settings):
        value = getattr(settings, field.name)
        if value is None:
            continue
        match field.name:
            case "name":
                if not value.strip() or len(value) > 200:
                    raise InvalidInput(
                        "the name must be 1–200 characters", {"name": "1–200 characters"}
                    )
                out["name"] = value.strip()
            case "approvals_channel":
                out["approvals_channel"] = values.check_channel(value, "approvals_channel")
            case "ops_channel":
                out["ops_channel"] = values.check_channel(value, "ops_channel") if value else None
            case "slack_team_id":
                out["slack_team_id"] = value or None
            case "timezone":
                out["timezone"] = values.check_timezone(value)
            case "digest_time":
                out["digest_time"] = values.check_digest_time(value)
            case "approval_ttl" | "reminder_after":
                seconds = int(value.total_seconds())
                if seconds <= 0:
                    raise InvalidInput(f"{field.name} must be positive", {field.name: "positive"})
                out[
                    f"{field.name}_seconds"
                    if field.name == "approval_ttl"
                    else "reminder_after_seconds"
                ] = seconds
            case "min_approved_pilot_runs":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise InvalidInput(
                        f"the minimum of approved pilot runs must be a whole number, 0 or more, "
                        f"not {value!r}",
                        {field.name: "a whole number, 0 or more"},
                    )
                out[field.name] = value
            case "webhook_url":
                if value and not value.startswith(("https://", "http://")):
                    raise InvalidInput(
                        "the webhook URL must start with https://", {"webhook_url": "a URL"}
                    )
                out["webhook_url"] = value or None
            case _:
                out[field.name] = value
    return out


def _snapshot(workspace: Workspace) -> dict[str, Any]:
    """What the audit log records of a workspace's configuration (never the webhook secret)."""
    return {
        "name": workspace.name,
        "slack_team_id": workspace.slack_team_id,
        "approvals_channel": workspace.approvals_channel,
        "ops_channel": workspace.ops_channel,
        "timezone": workspace.timezone,
        "digest_time": workspace.digest_time,
        "approval_ttl_seconds": workspace.approval_ttl_seconds,
        "reminder_after_seconds": workspace.reminder_after_seconds,
        "regulated": workspace.regulated,
        "allow_self_approval": workspace.allow_self_approval,
        "min_approved_pilot_runs": workspace.min_approved_pilot_runs,
        "webhook_url": workspace.webhook_url,
    }


async def _check_channels_free(session: AsyncSession, workspace: Workspace) -> None:
    """A channel selects its workspace, so no two workspaces may share one."""
    with session.no_autoflush:  # the workspace's own pending change must not answer for it
        for channel in {
            workspace.approvals_channel,
            workspace.ops_channel or workspace.approvals_channel,
        }:
            if await store.channel_taken(session, channel, workspace.id):
                raise Conflict(f"channel {channel} already belongs to another workspace")


async def create_workspace(
    ctx: Context, key: str, settings: WorkspaceSettings, actor: Actor
) -> Created:
    values.check_key(key)
    if settings.name is None or settings.approvals_channel is None:
        raise InvalidInput("a workspace needs a name and an approvals channel")
    columns = _columns(settings)
    now = ctx.clock.now()
    try:
        async with ctx.db.transaction() as session:
            if await store.find(session, key) is not None:
                raise Conflict(
                    f"workspace {key!r} already exists; use `workspace set` to change it"
                )
            workspace = Workspace(key=key, created_at=now, **columns)
            secret = None
            if workspace.webhook_url:
                workspace.webhook_secret = secret = secrets.token_hex(32)
            await _check_channels_free(session, workspace)
            session.add(workspace)
            await session.flush()
            await audit_store.start_chain(session, workspace)
            await audit_store.append(
                session,
                workspace,
                at=now,
                actor=actor.audit_name,
                action="workspace.created",
                entity_type="workspace",
                entity_id=key,
                summary=f"workspace {key} created",
                data={"after": _snapshot(workspace)},
            )
    except IntegrityError:
        raise Conflict(f"workspace {key!r} or its channel is already taken") from None
    return Created(workspace, secret)


async def configure_workspace(
    ctx: Context, key: str, settings: WorkspaceSettings, actor: Actor
) -> Created:
    columns = _columns(settings)
    now = ctx.clock.now()
    try:
        async with ctx.db.transaction() as session:
            workspace = await store.get(session, key)
            await require(session, workspace, actor, Role.ADMIN, "changing workspace settings")
            before = _snapshot(workspace)
            for name, value in columns.items():
                setattr(workspace, name, value)
            secret = None
            if workspace.webhook_url and not workspace.webhook_secret:
                workspace.webhook_secret = secret = secrets.token_hex(32)
            after = _snapshot(workspace)
            if after == before:
                return Created(workspace, None)
            await _check_channels_free(session, workspace)
            changed = changed_fields(before, after)
            await audit_store.append(
                session,
                workspace,
                at=now,
                actor=actor.audit_name,
                action="workspace.configured",
                entity_type="workspace",
                entity_id=key,
                summary=f"workspace {key}: changed {', '.join(changed)}",
                data={
                    "before": {k: before[k] for k in changed},
                    "after": {k: after[k] for k in changed},
                },
            )
    except IntegrityError:
        raise Conflict("that channel already belongs to another workspace") from None
    return Created(workspace, secret)


async def list_workspaces(ctx: Context) -> Sequence[Workspace]:
    async with ctx.db.reading() as session:
        return await store.list_all(session)


async def get_workspace(ctx: Context, key: str) -> Workspace:
    async with ctx.db.reading() as session:
        return await store.get(session, key)


async def workspace_key_for_channel(
    ctx: Context, channel: str, team_id: str | None = None
) -> str | None:
    """The key of the workspace the channel belongs to, read on the driver: clicks and most
    commands start here. `team_id`: the request's Slack team in distributed mode (see
    `store.channel.workspace_key`)."""
    async with ctx.db.lookups.connection() as lookup:
        return await channel_store.workspace_key(lookup, team_id, channel)


async def webhook_target(ctx: Context, workspace_id: int) -> tuple[str, str] | None:
    """Where and with which secret a workspace's decision webhooks are sent, if it has one."""
    async with ctx.db.reading() as session:
        workspace = await session.get(Workspace, workspace_id)
    if workspace is None or not workspace.webhook_url or not workspace.webhook_secret:
        return None
    return workspace.webhook_url, workspace.webhook_secret


# ---- members -------------------------------------------------------------------------------


async def set_role(
    ctx: Context, key: str, user: str, new: Role | None, actor: Actor
) -> Member | None:
    """Grant, change or (with `new` None) remove a member's role. Returns the member after."""
    user = values.check_user(user.strip())
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        # Lock the workspace row: two owners demoting each other at once must not leave none.
        workspace = await store.get(session, key, lock=True)
        actor_role = await role_of(session, workspace, actor)
        if actor_role is None:
            raise Forbidden("only members of this workspace change roles")
        member = await store.member(session, workspace.id, user)
        current = None if member is None else member.role
        check_role_change(
            actor_role, current, new, owners=await store.count_owners(session, workspace.id)
        )
        if new is None:
            assert member is not None
            await session.delete(member)
            action, summary = "member.removed", f"{user} removed (was {current})"
        elif member is None:
            member = Member(workspace_id=workspace.id, slack_user_id=user, role=new, created_at=now)
            session.add(member)
            action, summary = "member.added", f"{user} added as {new}"
        else:
            member.role = new
            action, summary = "member.role_changed", f"{user}: {current} → {new}"
        await audit_store.append(
            session,
            workspace,
            at=now,
            actor=actor.audit_name,
            action=action,
            entity_type="member",
            entity_id=user,
            summary=summary,
            data={"before": current and current.value, "after": new and new.value},
        )
    return None if new is None else member


async def list_members(ctx: Context, key: str) -> Sequence[Member]:
    async with ctx.db.reading() as session:
        workspace = await store.get(session, key)
        return await store.members(session, workspace.id)


# ---- API keys ------------------------------------------------------------------------------


def hash_api_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_api_key(ctx: Context, key: str, name: str, actor: Actor) -> tuple[ApiKey, str]:
    """Returns the key row and the token, which exists nowhere else: only its hash is stored."""
    values.check_key(name, "name")
    token = f"{API_KEY_PREFIX}{secrets.token_urlsafe(32)}"
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        workspace = await store.get(session, key)
        await require(session, workspace, actor, Role.ADMIN, "creating API keys")
        if await store.active_key(session, workspace.id, name) is not None:
            raise Conflict(f"an active API key named {name!r} exists; revoke it first")
        api_key = ApiKey(
            workspace_id=workspace.id,
            name=name,
            prefix=token[: len(API_KEY_PREFIX) + 4],
            key_hash=hash_api_key(token),
            created_at=now,
        )
        session.add(api_key)
        await audit_store.append(
            session,
            workspace,
            at=now,
            actor=actor.audit_name,
            action="api_key.created",
            entity_type="api_key",
            entity_id=name,
            summary=f"API key {name} created",
        )
    return api_key, token


async def revoke_api_key(ctx: Context, key: str, name: str, actor: Actor) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        workspace = await store.get(session, key)
        await require(session, workspace, actor, Role.ADMIN, "revoking API keys")
        api_key = await store.active_key(session, workspace.id, name)
        if api_key is None:
            raise NotFound(f"no active API key named {name!r} in workspace {key}")
        api_key.revoked_at = now
        await audit_store.append(
            session,
            workspace,
            at=now,
            actor=actor.audit_name,
            action="api_key.revoked",
            entity_type="api_key",
            entity_id=name,
            summary=f"API key {name} revoked",
        )


async def list_api_keys(ctx: Context, key: str) -> Sequence[ApiKey]:
    async with ctx.db.reading() as session:
        workspace = await store.get(session, key)
        return await store.api_keys(session, workspace.id)


async def authenticate(ctx: Context, token: str) -> KeyHolder | None:
    """The workspace and key a bearer token belongs to, or None for an unknown or revoked one.
    Read on every request, never remembered: a revoked key stops at once, in every process."""
    return await key_holder(ctx, hash_api_key(token))


async def key_holder(ctx: Context, key_hash: str) -> KeyHolder | None:
    """`authenticate` by the token's hash."""
    async with ctx.db.lookups.connection() as lookup:
        return await store.key_holder(lookup, key_hash)

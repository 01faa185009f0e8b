"""The operator's install links (distributed mode): a single-use, expiring grant sealed into a
URL, and the OAuth `state` of each install attempt started from one. Completing the install is
`installations.complete_install`, which uses the grant and the state once each."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role
from trame_bot.errors import ConfigError, Forbidden, InvalidInput, NotFound
from trame_bot.services.access import require
from trame_bot.services.context import Context
from trame_bot.store import audit as audit_store
from trame_bot.store import installations as store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.models import InstallGrant, OAuthState
from trame_bot.vault import KEY_VARIABLE, Vault

STATE_LIFETIME = timedelta(minutes=10)
"""Between the install page and Slack's callback: a person reading one consent screen."""
INSTALL_PATH = "/slack/install"
_GRANT_PURPOSE = "install-grant:"
"""Sealed with the grant id, so no other sealed value (a stored token) passes as a link."""


@dataclass(frozen=True)
class GrantView:
    """A grant that may still be used: shown on the install page."""

    id: str
    workspace: str
    workspace_name: str
    expires_at: datetime


def vault_of(ctx: Context) -> Vault:
    if ctx.vault is None:
        raise ConfigError(
            f"{KEY_VARIABLE} is not set: Slack tokens and install links need it "
            "(make one with `trame-bot keys new`)"
        )
    return ctx.vault


async def create_install_link(
    ctx: Context, workspace_key: str, actor: Actor, ttl: timedelta, public_url: str | None
) -> str:
    """A single-use link that binds the Slack team installing through it to the workspace.
    The audit log records who made it and until when it works, never the link itself."""
    if not public_url:
        raise ConfigError("PUBLIC_URL is not set: an install link needs this server's address")
    vault = vault_of(ctx)
    if ttl <= timedelta(0):
        raise InvalidInput("the link must live a while: give --expires like 7d")
    now = ctx.clock.now()
    grant_id = secrets.token_urlsafe(24)
    async with ctx.db.transaction() as session:
        workspace = await workspace_store.get(session, workspace_key)
        await require(session, workspace, actor, Role.OWNER, "making Slack install links")
        grant = InstallGrant(
            id=grant_id,
            workspace_id=workspace.id,
            created_by=actor.audit_name,
            created_at=now,
            expires_at=now + ttl,
        )
        session.add(grant)
        await audit_store.append(
            session,
            workspace,
            at=now,
            actor=actor.audit_name,
            action="slack.install_link_created",
            entity_type="workspace",
            entity_id=workspace.key,
            summary=f"Slack install link made for {workspace.key}, valid until "
            f"{grant.expires_at:%Y-%m-%d %H:%M} UTC",
            data={"expires_at": grant.expires_at.isoformat()},
        )
    signed = vault.seal(_GRANT_PURPOSE + grant_id)
    return f"{public_url.rstrip('/')}{INSTALL_PATH}?{urlencode({'grant': signed})}"


def _grant_id(ctx: Context, signed: str | None) -> str:
    if not signed:
        raise Forbidden(
            "this install page needs the link your service provider sent you (it holds a grant)"
        )
    try:
        opened = vault_of(ctx).open(signed)
    except ConfigError:
        opened = ""
    if not opened.startswith(_GRANT_PURPOSE):
        raise InvalidInput(
            "this install link is not one trame-bot made: ask your service provider for a new one"
        )
    return opened.removeprefix(_GRANT_PURPOSE)


def usable_grant(grant: InstallGrant | None, now: datetime) -> InstallGrant:
    if grant is None:
        raise NotFound("this install link was withdrawn: ask your service provider for a new one")
    if grant.used_at is not None:
        raise Forbidden(
            "this install link was already used; each link works once: ask your service "
            "provider for a new one"
        )
    if grant.expires_at <= now:
        raise Forbidden(
            f"this install link expired on {grant.expires_at:%Y-%m-%d %H:%M} UTC: ask your "
            "service provider for a new one"
        )
    return grant


async def check_grant(ctx: Context, signed: str | None) -> GrantView:
    """The grant a link holds, or the reason it cannot be used: InvalidInput (forged),
    NotFound (unknown), Forbidden (missing, used, expired)."""
    grant_id = _grant_id(ctx, signed)
    async with ctx.db.reading() as session:
        grant = usable_grant(await store.grant(session, grant_id), ctx.clock.now())
        workspace = await workspace_store.by_id(session, grant.workspace_id)
    return GrantView(grant.id, workspace.key, workspace.name, grant.expires_at)


async def start_install(ctx: Context, signed: str | None) -> str:
    """The OAuth `state` of a new install attempt through the link's grant (10 minutes)."""
    grant_id = _grant_id(ctx, signed)
    now = ctx.clock.now()
    value = secrets.token_urlsafe(32)
    async with ctx.db.transaction() as session:
        usable_grant(await store.grant(session, grant_id), now)
        session.add(OAuthState(state=value, grant_id=grant_id, expires_at=now + STATE_LIFETIME))
    return value


async def check_state(ctx: Context, value: str | None) -> None:
    """Refuses a state before Slack's code is spent on it; `complete_install` checks again."""
    async with ctx.db.reading() as session:
        await usable_state(session, value, ctx.clock.now())


async def usable_state(session: AsyncSession, value: str | None, now: datetime) -> OAuthState:
    found = None if not value else await store.state(session, value)
    if found is None:
        raise InvalidInput(
            "this install did not start from a trame-bot install link (unknown state): "
            "open the link again"
        )
    if found.consumed_at is not None:
        raise Forbidden("this install was already completed: open the link again if needed")
    if found.expires_at <= now:
        raise Forbidden("this install took too long (over 10 minutes): open the link again")
    usable_grant(await store.grant(session, found.grant_id), now)
    return found

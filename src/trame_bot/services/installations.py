"""Binding a client's Slack team to a workspace (distributed mode): the operator's install link,
the OAuth install it starts, Slack telling us the app is gone, and the stored tokens' keys.

Decisions the issue leaves open, kept here so they are read where they apply:
- A link holds the grant id sealed with the vault (Fernet: authenticated encryption). The id
  alone is unguessable; sealing it also means someone who can read the database cannot make
  a working link. A link made under a key later removed from `TRAME_ENCRYPTION_KEY` stops
  working, like a forged one.
- A workspace has one team. An install from another team is refused while the workspace's
  current team is still connected (the operator clears it first with
  `trame-bot workspace set KEY --slack-team ""`); a workspace whose team uninstalled the app,
  or that names a team never installed here, is moved to the installing team: the operator's
  new link says so.
- A reinstall reconnects every workspace the team serves; each of their audit chains says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.errors import Conflict
from trame_bot.services.context import Context
from trame_bot.services.install_links import usable_grant, usable_state, vault_of
from trame_bot.store import audit as audit_store
from trame_bot.store import installations as store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.models import SlackInstallation, Workspace
from trame_bot.vault import Vault


@dataclass(frozen=True)
class SlackInstall:
    """What Slack's `oauth.v2.access` answered for one install, tokens still in clear."""

    team_id: str
    team_name: str
    bot_token: str
    enterprise_id: str | None = None
    app_id: str | None = None
    bot_user_id: str | None = None
    bot_id: str | None = None
    bot_scopes: str | None = None
    bot_refresh_token: str | None = None
    bot_token_expires_at: datetime | None = None
    installed_by: str | None = None


@dataclass(frozen=True)
class Installed:
    workspace: str
    team_id: str
    team_name: str


@dataclass(frozen=True)
class OpenedBot:
    """A connected team's bot, tokens opened for one use (never stored, never logged)."""

    team_id: str
    team_name: str
    enterprise_id: str | None
    app_id: str | None
    bot_user_id: str | None
    bot_id: str | None
    bot_scopes: str | None
    bot_token: str
    bot_refresh_token: str | None
    bot_token_expires_at: datetime | None
    installed_by: str | None
    installed_at: datetime


@dataclass(frozen=True)
class SlackConnection:
    """Whether a workspace's Slack is reachable, for `workspace show` and `/readyz`."""

    workspace: str
    team_id: str | None
    team_name: str | None
    state: str
    """`connected`, `disconnected` or `not installed`."""
    since: datetime | None = None
    reason: str | None = None

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    def describe(self) -> str:
        if self.state == "disconnected":
            return f"disconnected since {self.since:%Y-%m-%d %H:%M} UTC ({self.reason})"
        return self.state


# ---- completing an install ------------------------------------------------------------------


async def complete_install(ctx: Context, state: str, installation: SlackInstall) -> Installed:
    """One transaction: the state and the grant are used (each by exactly one caller), the
    team's installation is stored with its tokens sealed (replacing an older one), and the
    grant's workspace is bound to the team and audits it. A refusal stores nothing. Held
    messages go out after the commit (the outbox wakes on every commit)."""
    vault = vault_of(ctx)
    now = ctx.clock.now()
    team = installation.team_id
    try:
        async with ctx.db.transaction() as session:
            grant_id = await store.consume_state(session, state, now)
            if grant_id is None:
                await usable_state(session, state, now)  # raises the precise reason
                raise Conflict("this install was already completed")
            workspace_id = await store.use_grant(session, grant_id, team, now)
            if workspace_id is None:
                usable_grant(await store.grant(session, grant_id), now)
                raise Conflict("this install link was already used")
            grant = await store.grant(session, grant_id)
            assert grant is not None
            workspace = await workspace_store.by_id(session, workspace_id)
            previous = await _check_binding(session, workspace, team)
            row = await store.for_team(session, team)
            reconnected = row is not None and row.disconnected_at is not None
            row = _stored(vault, row, installation, now)
            session.add(row)
            workspace.slack_team_id = team
            await session.flush()
            installer = installation.installed_by or "unknown"
            await audit_store.append(
                session,
                workspace,
                at=now,
                actor=f"slack:{installer}",
                action="slack.installed",
                entity_type="workspace",
                entity_id=workspace.key,
                summary=f"Slack team {installation.team_name} ({team}) installed trame-bot "
                f"for {workspace.key}",
                data={
                    "team_id": team,
                    "team_name": installation.team_name,
                    "installed_by": installer,
                    "link_made_by": grant.created_by,
                    "previous_team_id": previous,
                },
            )
            if reconnected:
                await _audit_others(session, team, workspace.id, now, installation.team_name)
    except IntegrityError:
        # Two installs of the same team at the same moment: the other one was stored.
        raise Conflict(
            "this Slack team was being installed at the same moment: try again"
        ) from None
    return Installed(workspace.key, team, installation.team_name)


async def _check_binding(session: AsyncSession, workspace: Workspace, team: str) -> str | None:
    """The team the workspace leaves, if any; refused while that team is still connected."""
    current = workspace.slack_team_id
    if current is None or current == team:
        return None
    installed = await store.for_team(session, current)
    if installed is not None and installed.disconnected_at is None:
        raise Conflict(
            f"workspace {workspace.key} is already connected to another Slack team "
            f"({installed.team_name}); its operator must disconnect it before it can move"
        )
    return current


def _stored(
    vault: Vault, row: SlackInstallation | None, found: SlackInstall, now: datetime
) -> SlackInstallation:
    row = row or SlackInstallation(team_id=found.team_id)
    row.team_name = found.team_name
    row.enterprise_id = found.enterprise_id
    row.app_id = found.app_id
    row.bot_user_id = found.bot_user_id
    row.bot_id = found.bot_id
    row.bot_scopes = found.bot_scopes
    row.bot_token = vault.seal(found.bot_token)
    row.bot_refresh_token = vault.seal(found.bot_refresh_token) if found.bot_refresh_token else None
    row.bot_token_expires_at = found.bot_token_expires_at
    row.installed_by = found.installed_by
    row.installed_at = now
    row.disconnected_at = None
    row.disconnected_reason = None
    return row


async def _audit_others(
    session: AsyncSession, team: str, installed_for: int, now: datetime, team_name: str
) -> None:
    for other in await store.bound_workspaces(session, team):
        if other.id == installed_for:
            continue
        await audit_store.append(
            session,
            other,
            at=now,
            actor="system",
            action="slack.reconnected",
            entity_type="workspace",
            entity_id=other.key,
            summary=f"Slack team {team_name} ({team}) installed trame-bot again",
            data={"team_id": team},
        )


# ---- Slack says the app is gone ---------------------------------------------------------------


async def disconnect(ctx: Context, team_id: str, reason: str) -> bool:
    """Marks the team's installation gone and audits it on each workspace it serves, once:
    True for the call that did it, False for repeats and for teams never installed. Messages
    of those workspaces wait in the outbox until a new install."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        if not await store.mark_disconnected(session, team_id, reason[:64], now):
            return False
        for workspace in await store.bound_workspaces(session, team_id):
            await audit_store.append(
                session,
                workspace,
                at=now,
                actor="system",
                action="slack.disconnected",
                entity_type="workspace",
                entity_id=workspace.key,
                summary=f"Slack disconnected ({reason}): messages wait until it is installed again",
                data={"team_id": team_id, "reason": reason},
            )
    return True


# ---- reads -----------------------------------------------------------------------------------


def _connection(workspace: Workspace, row: SlackInstallation | None) -> SlackConnection:
    if row is None:
        return SlackConnection(workspace.key, workspace.slack_team_id, None, "not installed")
    if row.disconnected_at is not None:
        return SlackConnection(
            workspace.key,
            row.team_id,
            row.team_name,
            "disconnected",
            row.disconnected_at,
            row.disconnected_reason,
        )
    return SlackConnection(workspace.key, row.team_id, row.team_name, "connected")


async def slack_connection(ctx: Context, workspace_key: str) -> SlackConnection:
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, workspace_key)
        return _connection(workspace, await store.for_workspace(session, workspace.id))


async def slack_connections(ctx: Context) -> list[SlackConnection]:
    """Every workspace's Slack connection (for `/readyz` detail and a metric)."""
    async with ctx.db.reading() as session:
        rows = {row.team_id: row for row in await store.all_installations(session)}
        return [
            _connection(w, rows.get(w.slack_team_id or ""))
            for w in await workspace_store.list_all(session)
        ]


async def find_bot(ctx: Context, team_id: str) -> OpenedBot | None:
    """A connected team's bot with its tokens opened; None if not installed or gone."""
    async with ctx.db.lookups.connection() as lookup:
        row = await store.of_team(lookup, team_id)
    if row is None or row.disconnected_at is not None:
        return None
    vault = vault_of(ctx)
    return OpenedBot(
        team_id=row.team_id,
        team_name=row.team_name,
        enterprise_id=row.enterprise_id,
        app_id=row.app_id,
        bot_user_id=row.bot_user_id,
        bot_id=row.bot_id,
        bot_scopes=row.bot_scopes,
        bot_token=vault.open(row.bot_token),
        bot_refresh_token=vault.open(row.bot_refresh_token) if row.bot_refresh_token else None,
        bot_token_expires_at=row.bot_token_expires_at,
        installed_by=row.installed_by,
        installed_at=row.installed_at,
    )


# ---- tokens ----------------------------------------------------------------------------------


async def save_rotated_tokens(
    ctx: Context,
    team_id: str,
    bot_token: str,
    refresh_token: str | None,
    expires_at: datetime | None,
) -> bool:
    """Slack's token rotation renewed a team's bot token: store the new pair, sealed. False
    when the team is not installed here (nothing to renew)."""
    vault = vault_of(ctx)
    async with ctx.db.transaction() as session:
        row = await store.for_team(session, team_id)
        if row is None:
            return False
        row.bot_token = vault.seal(bot_token)
        row.bot_refresh_token = vault.seal(refresh_token) if refresh_token else None
        row.bot_token_expires_at = expires_at
    return True


async def reseal_tokens(ctx: Context) -> int:
    """`trame-bot keys rotate`: every stored token sealed again under the newest key, in one
    transaction. Returns how many installations changed (0 when all already were)."""
    vault = vault_of(ctx)
    changed = 0
    async with ctx.db.transaction() as session:
        for row in await store.all_installations(session, lock=True):
            token = vault.reseal(row.bot_token)
            refresh = vault.reseal(row.bot_refresh_token) if row.bot_refresh_token else None
            if (token, refresh) != (row.bot_token, row.bot_refresh_token):
                row.bot_token, row.bot_refresh_token = token, refresh
                changed += 1
    return changed


def expiry(seconds_from_epoch: int | None) -> datetime | None:
    """slack_sdk keeps expiries as epoch seconds; the database as aware datetimes."""
    return None if seconds_from_epoch is None else datetime.fromtimestamp(seconds_from_epoch, UTC)


def epoch(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())

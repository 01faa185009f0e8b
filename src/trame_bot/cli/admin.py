"""Operator commands: the database, workspaces (and their Slack install links), members and
API keys."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from trame_bot.cli.app import cli, table, with_deps
from trame_bot.config import load_settings
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role
from trame_bot.domain.values import format_duration, parse_duration
from trame_bot.services import install_links, installations
from trame_bot.services import workspaces as service
from trame_bot.store.migrate import upgrade

if TYPE_CHECKING:
    from trame_bot.bootstrap import Deps


@cli.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the latest version (safe to run repeatedly)."""
    upgrade(load_settings().database_url)
    click.echo("database is up to date")


def _duration(_ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    return None if value is None else parse_duration(value, param.name or "duration")


def workspace_options(fn: Any) -> Any:
    options = [
        click.option("--name", help="Client-facing name."),
        click.option("--slack-team", "slack_team_id", help="Slack team id (T…)."),
        click.option("--approvals-channel", help="Channel id (C…) for approval cards."),
        click.option(
            "--ops-channel", help="Channel id for alerts and the digest (default: approvals)."
        ),
        click.option("--timezone", help="IANA time zone, e.g. Europe/Paris (default UTC)."),
        click.option(
            "--digest-time", help="Local time of the daily digest, HH:MM (default 09:00)."
        ),
        click.option(
            "--approval-ttl",
            callback=_duration,
            help="Pending runs expire after this (default 24h).",
        ),
        click.option(
            "--reminder-after", callback=_duration, help="Remind reviewers after this (default 4h)."
        ),
        click.option(
            "--regulated/--not-regulated",
            default=None,
            help="Only owners/admins change connectors.",
        ),
        click.option(
            "--allow-self-approval/--no-self-approval",
            default=None,
            help="May requesters approve their own runs.",
        ),
        click.option(
            "--min-approved-pilot-runs",
            "min_approved_pilot_runs",
            type=click.IntRange(min=0),
            help="The go-live form warns when a pilot has fewer approved runs of its "
            "current plan (default 1).",
        ),
        click.option("--webhook-url", help="Where decisions are pushed (signed)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _settings(options: dict[str, Any]) -> service.WorkspaceSettings:
    return service.WorkspaceSettings(**options)


def _show_secret(secret: str | None) -> None:
    if secret:
        click.echo("webhook secret (shown once; receivers check signatures with it):")
        click.echo(secret)


@cli.group()
def workspace() -> None:
    """Client workspaces."""


@workspace.command("create")
@click.argument("key")
@workspace_options
@with_deps
async def workspace_create(deps: Deps, key: str, **options: Any) -> None:
    """Create workspace KEY (a slug)."""
    created = await service.create_workspace(deps.ctx, key, _settings(options), Actor.cli())
    click.echo(f"workspace {created.workspace.key} created")
    _show_secret(created.webhook_secret)


@workspace.command("set")
@click.argument("key")
@workspace_options
@with_deps
async def workspace_set(deps: Deps, key: str, **options: Any) -> None:
    """Change workspace KEY's settings (only the options given)."""
    changed = await service.configure_workspace(deps.ctx, key, _settings(options), Actor.cli())
    click.echo(f"workspace {changed.workspace.key} updated")
    _show_secret(changed.webhook_secret)


@workspace.command("list")
@with_deps
async def workspace_list(deps: Deps) -> None:
    """List workspaces."""
    rows = [
        (w.key, w.name, w.approvals_channel, w.alerts_channel, w.timezone)
        for w in await service.list_workspaces(deps.ctx)
    ]
    table(rows, ("KEY", "NAME", "APPROVALS", "OPS", "TIMEZONE"))


@workspace.command("show")
@click.argument("key")
@with_deps
async def workspace_show(deps: Deps, key: str) -> None:
    """Show workspace KEY's settings."""
    w = await service.get_workspace(deps.ctx, key)
    rows = [
        ("key", w.key),
        ("name", w.name),
        ("slack team", w.slack_team_id or "-"),
        ("approvals channel", w.approvals_channel),
        ("ops channel", w.alerts_channel),
        ("timezone", w.timezone),
        ("digest time", w.digest_time),
        ("approval ttl", format_duration(w.approval_ttl_seconds)),
        ("reminder after", format_duration(w.reminder_after_seconds)),
        ("regulated", w.regulated),
        ("self-approval", w.allow_self_approval),
        ("min approved pilot runs", w.min_approved_pilot_runs),
        ("webhook url", w.webhook_url or "-"),
    ]
    if deps.ctx.distributed:
        slack = await installations.slack_connection(deps.ctx, key)
        team = f"{slack.team_name} ({slack.team_id}): " if slack.team_name else ""
        rows.insert(3, ("slack", team + slack.describe()))
    table(rows, ("SETTING", "VALUE"))


@workspace.command("install-link")
@click.argument("key")
@click.option(
    "--expires",
    default="7d",
    show_default=True,
    callback=_duration,
    help="How long the link works (it works once).",
)
@with_deps
async def workspace_install_link(deps: Deps, key: str, expires: timedelta) -> None:
    """Print a link that installs trame-bot in the Slack team of whoever opens it, bound to
    workspace KEY: send it to the client's Slack admin. It works once, until it expires."""
    url = await install_links.create_install_link(
        deps.ctx, key, Actor.cli(), expires, deps.settings.public_url
    )
    click.echo(url)


@cli.group()
def member() -> None:
    """Members and their roles."""


ROLES = click.Choice([r.value for r in Role])


@member.command("set")
@click.argument("key")
@click.argument("user")
@click.argument("role", type=ROLES)
@click.option("--by", help="Act as this Slack user (their role rules apply).")
@with_deps
async def member_set(deps: Deps, key: str, user: str, role: str, by: str | None) -> None:
    """Give USER (Slack user id) ROLE in workspace KEY."""
    await service.set_role(deps.ctx, key, user, Role(role), Actor.cli(by))
    click.echo(f"{user} is {role} in {key}")


@member.command("remove")
@click.argument("key")
@click.argument("user")
@click.option("--by", help="Act as this Slack user (their role rules apply).")
@with_deps
async def member_remove(deps: Deps, key: str, user: str, by: str | None) -> None:
    """Remove USER from workspace KEY."""
    await service.set_role(deps.ctx, key, user, None, Actor.cli(by))
    click.echo(f"{user} removed from {key}")


@member.command("list")
@click.argument("key")
@with_deps
async def member_list(deps: Deps, key: str) -> None:
    """List the members of workspace KEY."""
    members = await service.list_members(deps.ctx, key)
    table([(m.slack_user_id, m.role.value) for m in members], ("USER", "ROLE"))


@cli.group()
def apikey() -> None:
    """API keys the workflow engine uses."""


@apikey.command("create")
@click.argument("key")
@click.option("--name", default="engine", show_default=True, help="A name for the key.")
@with_deps
async def apikey_create(deps: Deps, key: str, name: str) -> None:
    """Create an API key for workspace KEY; the key is the last line printed (shown once)."""
    _row, token = await service.create_api_key(deps.ctx, key, name, Actor.cli())
    click.echo(f"API key {name} created for {key}; store it now, it is not shown again:")
    click.echo(token)


@apikey.command("list")
@click.argument("key")
@with_deps
async def apikey_list(deps: Deps, key: str) -> None:
    """List workspace KEY's API keys (never the keys themselves)."""
    rows = [
        (
            k.name,
            f"{k.prefix}…",
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active",
        )
        for k in await service.list_api_keys(deps.ctx, key)
    ]
    table(rows, ("NAME", "PREFIX", "CREATED", "STATE"))


@apikey.command("revoke")
@click.argument("key")
@click.argument("name")
@with_deps
async def apikey_revoke(deps: Deps, key: str, name: str) -> None:
    """Revoke workspace KEY's API key NAME."""
    await service.revoke_api_key(deps.ctx, key, name, Actor.cli())
    click.echo(f"API key {name} revoked")

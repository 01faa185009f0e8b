"""`trame-bot alert`: what the connector alert's buttons do, from the command line, through the
same service. The alert's message in Slack is updated in place by the running server (the
command line queues the update; it does not talk to Slack itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from trame_bot.cli.app import cli, table, with_deps
from trame_bot.domain.actors import Actor
from trame_bot.domain.alerts import AlertView, AlertWorkflow, parse_target
from trame_bot.services import alerts as alert_service
from trame_bot.store.alerts import NEEDS_ATTENTION

if TYPE_CHECKING:
    from trame_bot.bootstrap import Deps

TARGET_HELP = (
    "TARGET is a connector key (its latest “needs attention” alert) or an alert id "
    "(`#12` or `12`; a connector named 12 is meant first), as `alert list` shows them."
)


@cli.group()
def alert() -> None:
    """Connector alerts: list them, pause the workflows a broken connector affects, resume."""


@alert.command("list")
@click.argument("key")
@click.option("--connector", "connector_key", help="Only this connector's alerts.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@with_deps
async def alert_list(deps: Deps, key: str, connector_key: str | None, limit: int) -> None:
    """List workspace KEY's connector alerts, newest first, and what was done from them."""
    found = await alert_service.list_alerts(deps.ctx, key, connector_key, limit)
    rows = [
        (
            f"#{v.alert_id}",
            v.connector,
            _kind(v),
            f"{v.raised_at:%Y-%m-%d %H:%M}" if v.raised_at else "",
            _done(v),
            _next(v),
        )
        for v in found
    ]
    table(rows, ("ID", "CONNECTOR", "ALERT", "RAISED (UTC)", "DONE", "NEXT"))


@alert.command("pause-affected", epilog=TARGET_HELP)
@click.argument("key")
@click.argument("target")
@click.option("--by", help="Act as this Slack user (their role rules apply: member or above).")
@with_deps
async def alert_pause_affected(deps: Deps, key: str, target: str, by: str | None) -> None:
    """Pause every workflow using the alert's connector that is not paused yet (what the
    alert's Pause affected workflows button does)."""
    done = await alert_service.pause_affected_at(deps.ctx, key, parse_target(target), Actor.cli(by))
    if done.workflows:
        click.echo(f"paused from alert #{done.alert_id} ({done.connector}): {_was(done.workflows)}")
    else:
        click.echo(
            f"nothing to pause from alert #{done.alert_id}: every workflow using "
            f"{done.connector} was already paused (recorded on the alert)"
        )
    if done.connector_health.value == "ok":
        click.echo(
            f"the connector has recovered already: `trame-bot alert resume {key} "
            f"{done.connector}` resumes them when ready"
        )


@alert.command("resume", epilog=TARGET_HELP)
@click.argument("key")
@click.argument("target")
@click.option("--by", help="Act as this Slack user (their role rules apply: admin or above).")
@with_deps
async def alert_resume(deps: Deps, key: str, target: str, by: str | None) -> None:
    """Resume the workflows paused from the outage alert and unchanged since, each to the
    status it had (what the recovery notice's Resume them button does). Refused while the
    connector is unhealthy."""
    done = await alert_service.resume_at(deps.ctx, key, parse_target(target), Actor.cli(by))
    resumed = ", ".join(f"{w.key} ({w.status})" for w in done.workflows)
    click.echo(f"resumed from recovery notice #{done.alert_id} ({done.connector}): {resumed}")


def _was(workflows: tuple[AlertWorkflow, ...]) -> str:
    return ", ".join(f"{w.key} (was {w.status})" for w in workflows)


def _kind(view: AlertView) -> str:
    if view.event == NEEDS_ATTENTION:
        return f"needs attention: {view.data.get('error') or view.data.get('health', '')}"
    return f"recovered (of #{view.outage_id})" if view.outage_id else "recovered"


def _done(view: AlertView) -> str:
    if view.acted_at is None:
        return ""
    verb = "paused" if view.event == NEEDS_ATTENTION else "resumed"
    names = ", ".join(w.key for w in view.acted_on) or "nothing (all were paused)"
    return f"{verb} by {view.acted_by} at {view.acted_at:%Y-%m-%d %H:%M}: {names}"


def _next(view: AlertView) -> str:
    if view.acted_at is not None:
        return ""
    if view.event == NEEDS_ATTENTION:
        return "pause-affected"
    return f"resume: {', '.join(w.key for w in view.to_resume)}" if view.to_resume else ""

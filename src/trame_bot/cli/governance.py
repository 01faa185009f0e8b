"""Connectors, workflows and runs from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from trame_bot.cli.app import cli, read_file, table, with_deps
from trame_bot.documents import ConnectorDoc, RunRequestDoc, WorkflowDoc, load_documents, parse
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import DeclineCategory, Source, Status, Verdict
from trame_bot.domain.health import Report
from trame_bot.domain.rollback import RollbackAction, RollbackPlan, plan_from
from trame_bot.domain.sensitive import masked_details, prompt_warnings
from trame_bot.services import connectors as connector_service
from trame_bot.services import decisions as decision_service
from trame_bot.services import rollback as rollback_service
from trame_bot.services import run_requests as run_request_service
from trame_bot.services import runs as run_service
from trame_bot.services import scopes as scope_service
from trame_bot.services import workflow_status as workflow_status_service
from trame_bot.services import workflows as workflow_service
from trame_bot.store.models import Run

if TYPE_CHECKING:
    from trame_bot.bootstrap import Deps


@cli.group()
def connector() -> None:
    """Connectors (external accounts workflows use)."""


@connector.command("apply")
@click.argument("key")
@click.argument("file", type=click.Path(dir_okay=False))
@with_deps
async def connector_apply(deps: Deps, key: str, file: str) -> None:
    """Create or update connectors in workspace KEY from FILE (YAML or JSON)."""
    docs = [parse(ConnectorDoc, raw) for raw in load_documents(read_file(file))]
    for doc in docs:
        applied = await connector_service.apply_connector(deps.ctx, key, doc, Actor.cli())
        what = (
            "created"
            if applied.created
            else ("updated: " + ", ".join(applied.changed) if applied.changed else "unchanged")
        )
        if applied.widened:
            what += " (scopes widened: " + " ".join(f"+{w}" for w in applied.widened) + ")"
        click.echo(f"connector {doc.key}: {what}")


@connector.command("list")
@click.argument("key")
@with_deps
async def connector_list(deps: Deps, key: str) -> None:
    """List workspace KEY's connectors, their health, and the grants no workflow step needs."""
    rows = [
        (
            g.connector.key,
            g.connector.toolkit,
            g.connector.account,
            ",".join(g.connector.scopes),
            ",".join(g.over_privileged),
            g.connector.health.value,
            f"{g.connector.health_since:%Y-%m-%d %H:%M}",
            g.connector.last_error or "",
        )
        for g in await scope_service.list_connectors(deps.ctx, key)
    ]
    headers = ("KEY", "TOOLKIT", "ACCOUNT", "SCOPES", "OVER-PRIVILEGED", "HEALTH", "SINCE")
    table(rows, (*headers, "LAST ERROR"))


@connector.command("health")
@click.argument("key")
@click.argument("connector_key", metavar="CONNECTOR")
@click.argument("report", type=click.Choice([r.value for r in Report]))
@click.option("--error", help="What went wrong (for error/disconnected).")
@with_deps
async def connector_health(
    deps: Deps, key: str, connector_key: str, report: str, error: str | None
) -> None:
    """Report CONNECTOR's health as the engine would."""
    found = await connector_service.report_health(
        deps.ctx, key, connector_key, Report(report), error, Actor.cli()
    )
    click.echo(f"connector {found.key} is {found.health.value}")


@cli.group()
def workflow() -> None:
    """Workflows, their status and triggers."""


@workflow.command("apply")
@click.argument("key")
@click.argument("file", type=click.Path(dir_okay=False))
@with_deps
async def workflow_apply(deps: Deps, key: str, file: str) -> None:
    """Create or update workflows in workspace KEY from FILE (YAML or JSON)."""
    docs = [parse(WorkflowDoc, raw) for raw in load_documents(read_file(file))]
    for doc in docs:
        applied = await workflow_service.apply_workflow(deps.ctx, key, doc, Actor.cli())
        wf = applied.workflow
        what = (
            "created"
            if applied.created
            else ("updated: " + ", ".join(applied.changed) if applied.changed else "unchanged")
        )
        click.echo(f"workflow {wf.key}: {what} ({wf.status.value}, version {wf.version})")
        for warning in prompt_warnings(wf.prompt):
            click.echo(f"  warning: {warning}; move it to required_details", err=True)


@workflow.command("list")
@click.argument("key")
@with_deps
async def workflow_list(deps: Deps, key: str) -> None:
    """List workspace KEY's workflows."""
    rows = [
        (w.key, w.name, w.status.value, w.version, len(w.steps), "yes" if w.production else "")
        for w in await workflow_service.list_workflows(deps.ctx, key)
    ]
    table(rows, ("KEY", "NAME", "STATUS", "VERSION", "STEPS", "PRODUCTION"))


@workflow.command("show")
@click.argument("key")
@click.argument("ref", metavar="WORKFLOW")
@with_deps
async def workflow_show(deps: Deps, key: str, ref: str) -> None:
    """Show a workflow (by key or name) of workspace KEY."""
    wf = await workflow_service.get_workflow(deps.ctx, key, ref)
    click.echo(
        f"{wf.name} ({wf.key}) — {wf.status.value}, version {wf.version}"
        + (", production" if wf.production else "")
    )
    click.echo(
        f"approvals required: {wf.required_approvals}; reviewers: "
        + (", ".join(wf.reviewers) or "any member")
    )
    table(
        [
            (i + 1, s["name"], s["tool"], s["connector"], s["access"])
            for i, s in enumerate(wf.steps)
        ],
        ("#", "STEP", "TOOL", "CONNECTOR", "ACCESS"),
    )
    for t in wf.triggers:
        click.echo(f"trigger {t.key} ({t.kind.value}): {'on' if t.enabled else 'off'}")
    for name, value in masked_details(wf.required_details).items():
        click.echo(f"detail {name}: {value}")
    for warning in prompt_warnings(wf.prompt):
        click.echo(f"warning: {warning}")


@workflow.command("status")
@click.argument("key")
@click.argument("ref", metavar="WORKFLOW")
@click.argument("status", type=click.Choice([s.value for s in Status]))
@click.option("--by", help="Act as this Slack user (their role rules apply).")
@click.option("--reason", help="Why (required to pause).")
@click.option("--signed-off-by", help="Who at the client signed off (to go live).")
@click.option("--evidence", help="Where the sign-off is recorded (to go live).")
@click.option("--rollback-plan", help="Rollback notes (to go live); alone, the plan is to pause.")
@click.option(
    "--rollback-disable-trigger",
    "rollback_triggers",
    multiple=True,
    metavar="TRIGGER",
    help="The rollback plan disables this trigger instead of pausing (repeatable).",
)
@with_deps
async def workflow_status(
    deps: Deps,
    key: str,
    ref: str,
    status: str,
    by: str | None,
    reason: str | None,
    signed_off_by: str | None,
    evidence: str | None,
    rollback_plan: str | None,
    rollback_triggers: tuple[str, ...],
) -> None:
    """Move WORKFLOW to STATUS (paused → its earlier status is a resume)."""
    plan: RollbackPlan | str | None = rollback_plan
    if rollback_triggers:
        plan = plan_from(RollbackAction.DISABLE_TRIGGERS, rollback_triggers, rollback_plan)
    sign_off = (
        workflow_status_service.SignOff(signed_off_by or "", evidence or "")
        if signed_off_by or evidence
        else None
    )
    wf = await workflow_status_service.change_status(
        deps.ctx,
        key,
        ref,
        Status(status),
        Actor.cli(by),
        reason=reason,
        sign_off=sign_off,
        rollback_plan=plan,
    )
    click.echo(f"workflow {wf.key} is now {wf.status.value}")


@workflow.command("rollback")
@click.argument("key")
@click.argument("ref", metavar="WORKFLOW")
@click.option("--by", help="Act as this Slack user (their role rules apply).")
@click.option("--why", help="Why it is rolled back (audited).")
@with_deps
async def workflow_rollback(
    deps: Deps, key: str, ref: str, by: str | None, why: str | None
) -> None:
    """Carry out WORKFLOW's rollback plan: pause it, or disable the triggers the plan names
    (a plan from before plans were structured pauses)."""
    done = await rollback_service.roll_back(deps.ctx, key, ref, Actor.cli(by), why=why)
    if done.disabled:
        click.echo(f"workflow {done.workflow_key} rolled back: disabled {', '.join(done.disabled)}")
    else:
        click.echo(f"workflow {done.workflow_key} rolled back: paused")


@workflow.command("trigger")
@click.argument("key")
@click.argument("ref", metavar="WORKFLOW")
@click.argument("trigger")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--by", help="Act as this Slack user (their role rules apply).")
@with_deps
async def workflow_trigger(
    deps: Deps, key: str, ref: str, trigger: str, state: str, by: str | None
) -> None:
    """Turn a workflow's TRIGGER on or off."""
    found = await workflow_service.set_trigger(
        deps.ctx, key, ref, trigger, state == "on", Actor.cli(by)
    )
    click.echo(f"trigger {found.key} is {'on' if found.enabled else 'off'}")


@cli.group()
def run() -> None:
    """Run requests and decisions."""


def _print_run(found: Run) -> None:
    click.echo(f"run {found.id}: {found.state.value}")
    if found.reason:
        click.echo(f"reason: {found.reason}")
    click.echo(f"approvals: {found.approvals} of {found.required_approvals}")
    click.echo(f"fingerprint: {found.fingerprint}")


@run.command("request")
@click.argument("key")
@click.argument("ref", metavar="WORKFLOW")
@click.option("--trigger", help="Request as this trigger would (source: trigger).")
@click.option("--by", help="Who requests it (Slack user id or a name).")
@click.option("--idempotency-key", help="Repeat-safe key: the same key returns the same run.")
@with_deps
async def run_request(
    deps: Deps, key: str, ref: str, trigger: str | None, by: str | None, idempotency_key: str | None
) -> None:
    """Ask whether WORKFLOW may run now; prints the gate's answer."""
    doc = parse(
        RunRequestDoc,
        {
            "source": Source.TRIGGER.value if trigger else Source.MANUAL.value,
            "trigger": trigger,
            "requested_by": by,
            "idempotency_key": idempotency_key,
        },
    )
    requested = await run_request_service.request_run(deps.ctx, key, ref, doc, Actor.cli())
    _print_run(requested.run)


@run.command("show")
@click.argument("key")
@click.argument("run_id", metavar="RUN")
@with_deps
async def run_show(deps: Deps, key: str, run_id: str) -> None:
    """Show a run and its decisions."""
    found, decisions = await run_service.get_run(deps.ctx, key, run_id)
    _print_run(found)
    for d in decisions:
        click.echo(
            f"{d.at:%Y-%m-%d %H:%M} {d.user} {d.verdict.value}"
            + (f": {d.reason}" if d.reason else "")
        )


@run.command("decide")
@click.argument("key")
@click.argument("run_id", metavar="RUN")
@click.argument("verdict", type=click.Choice([v.value for v in Verdict]))
@click.option("--by", required=True, help="The reviewer's Slack user id.")
@click.option("--reason", help="Why (required to decline).")
@click.option("--category", type=click.Choice([c.value for c in DeclineCategory]))
@with_deps
async def run_decide(
    deps: Deps,
    key: str,
    run_id: str,
    verdict: str,
    by: str,
    reason: str | None,
    category: str | None,
) -> None:
    """Approve or decline RUN as reviewer --by (what the Slack buttons do)."""
    decided = await decision_service.decide(
        deps.ctx,
        run_id,
        Actor.cli(by),
        Verdict(verdict),
        reason=reason,
        category=DeclineCategory(category) if category else None,
        workspace_key=key,
    )
    _print_run(decided.run)

"""The sandbox's demo workspace, made through the real services as an operator would with the
CLI. Each piece is made only when absent, so starting the sandbox again changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from trame_bot.documents import ConnectorDoc, RunRequestDoc, StepDoc, TriggerDoc, WorkflowDoc
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Access, Role, Status, TriggerKind, Verdict
from trame_bot.domain.health import Report
from trame_bot.services import connectors, runs, workflows, workspaces
from trame_bot.services.context import Context

WORKSPACE = "acme"
WORKSPACE_NAME = "Acme Corp"
APPROVALS = "C0APPROVALS"
OPS = "C0OPS"
CHANNEL_NAMES = {APPROVALS: "acme-approvals", OPS: "acme-ops"}
API_KEY_NAME = "sandbox"

OPERATOR = Actor.cli()
ENGINE = Actor.api("engine")


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    title: str
    role: Role | None
    """Their workspace role; None for the client's reviewer, who is not a member."""


OWNER = Person("U0OLIVIA", "Olivia", "owner", Role.OWNER)
ADMIN = Person("U0ADAM", "Adam", "admin", Role.ADMIN)
MEMBER = Person("U0MIA", "Mia", "member", Role.MEMBER)
REVIEWER = Person("U0CLARA", "Clara", "client reviewer", None)
PEOPLE = (OWNER, ADMIN, MEMBER, REVIEWER)


def _read(name: str, connector: str = "acme-salesforce", tool: str = "salesforce.query") -> StepDoc:
    return StepDoc(name=name, tool=tool, connector=connector, access=Access.READ)


def _write(name: str) -> StepDoc:
    return StepDoc(name=name, tool="sheets.append", connector="acme-sheets", access=Access.WRITE)


def _schedule(key: str) -> TriggerDoc:
    return TriggerDoc(key=key, kind=TriggerKind.SCHEDULE)


CONNECTORS = (
    ConnectorDoc(
        key="acme-salesforce",
        toolkit="salesforce",
        account="acme.my.salesforce.com/integration-user",
        scopes=["read"],
    ),
    ConnectorDoc(
        key="acme-sheets",
        toolkit="google-sheets",
        account="sheets-bot@acme.example.com",
        scopes=["write:finance"],
    ),
    ConnectorDoc(
        key="acme-hubspot", toolkit="hubspot", account="acme-hubspot-portal-4711", scopes=["read"]
    ),
)
BROKEN_CONNECTOR = "acme-hubspot"

WORKFLOWS = (
    WorkflowDoc(
        key="invoice-sync",
        name="Invoice sync",
        status=Status.PILOT,
        production=True,
        reviewers=[REVIEWER.id],
        prompt="Sync approved invoices from Salesforce to the finance sheet.",
        required_details={"finance_sheet": "https://docs.example.com/sheet/123"},
        steps=[
            _read("Fetch approved invoices"),
            _write("Append rows to the finance sheet"),
        ],
        triggers=[_schedule("nightly")],
    ),
    WorkflowDoc(
        key="vendor-onboarding",
        name="Vendor onboarding",
        status=Status.PILOT,
        prompt="Add newly signed vendors to the supplier sheet.",
        steps=[
            _read("Fetch signed vendor contracts"),
            _write("Add vendors to the supplier sheet"),
        ],
        triggers=[_schedule("hourly")],
    ),
    WorkflowDoc(
        key="lead-digest",
        name="Lead digest",
        status=Status.DRAFT,
        prompt="Summarise yesterday's new leads for the sales channel.",
        steps=[_read("Fetch new leads", "acme-hubspot", "hubspot.search")],
        triggers=[_schedule("morning")],
    ),
    WorkflowDoc(
        key="payroll-export",
        name="Payroll export",
        status=Status.PILOT,
        production=True,
        prompt="Export the approved payroll lines to the finance sheet.",
        steps=[
            _read("Fetch approved payroll lines"),
            _write("Write the payroll sheet"),
        ],
        triggers=[_schedule("monthly")],
    ),
)
LIVE_WORKFLOW = "payroll-export"
SIGN_OFF = workflows.SignOff(
    "Dana Ruiz, CFO at Acme", "https://tickets.example.com/ACME-142 (email of 3 March)"
)
ROLLBACK_PLAN = "Pause the workflow, then restore the payroll sheet from yesterday's version."


async def seed(ctx: Context) -> bool:
    """Make whatever of the demo workspace is missing; True when the workspace was new."""
    known = {w.key for w in await workspaces.list_workspaces(ctx)}
    created = WORKSPACE not in known
    if created:
        await workspaces.create_workspace(
            ctx,
            WORKSPACE,
            workspaces.WorkspaceSettings(
                name=WORKSPACE_NAME, approvals_channel=APPROVALS, ops_channel=OPS
            ),
            OPERATOR,
        )
    roles = {m.slack_user_id: m.role for m in await workspaces.list_members(ctx, WORKSPACE)}
    for person in PEOPLE:
        if person.role is not None and person.id not in roles:
            await workspaces.set_role(ctx, WORKSPACE, person.id, person.role, OPERATOR)
    new_connectors = await _connectors(ctx)
    await _workflows(ctx)
    if BROKEN_CONNECTOR in new_connectors:
        # As the engine would report it: the alert in the ops channel names the workflows.
        await connectors.report_health(
            ctx,
            WORKSPACE,
            BROKEN_CONNECTOR,
            Report.ERROR,
            "401 from HubSpot: the OAuth token was revoked",
            ENGINE,
        )
    return created


async def _connectors(ctx: Context) -> set[str]:
    present = {c.key for c in await connectors.list_connectors(ctx, WORKSPACE)}
    for doc in CONNECTORS:
        if doc.key not in present:
            await connectors.apply_connector(ctx, WORKSPACE, doc, OPERATOR)
    return {doc.key for doc in CONNECTORS} - present


async def _workflows(ctx: Context) -> None:
    present = {w.key for w in await workflows.list_workflows(ctx, WORKSPACE)}
    for doc in WORKFLOWS:
        if doc.key in present:
            continue
        await workflows.apply_workflow(ctx, WORKSPACE, doc, OPERATOR)
        if doc.key == LIVE_WORKFLOW:
            await _go_live(ctx, doc.key)


async def _go_live(ctx: Context, key: str) -> None:
    """A production workflow goes live after an approved pilot run and a recorded sign-off."""
    requested = await runs.request_run(
        ctx, WORKSPACE, key, RunRequestDoc(requested_by=MEMBER.id), ENGINE
    )
    await runs.decide(
        ctx, requested.run.id, Actor.slack(ADMIN.id), Verdict.APPROVE, workspace_key=WORKSPACE
    )
    await workflows.change_status(
        ctx,
        WORKSPACE,
        key,
        Status.LIVE,
        Actor.slack(ADMIN.id),
        sign_off=SIGN_OFF,
        rollback_plan=ROLLBACK_PLAN,
    )


async def fresh_api_key(ctx: Context) -> str:
    """A new key for the page's engine form. Only a key's hash is stored, so the sandbox
    cannot read back the one it made last time: it revokes that one and makes another."""
    active = [
        k
        for k in await workspaces.list_api_keys(ctx, WORKSPACE)
        if k.name == API_KEY_NAME and k.revoked_at is None
    ]
    if active:
        await workspaces.revoke_api_key(ctx, WORKSPACE, API_KEY_NAME, OPERATOR)
    _, token = await workspaces.create_api_key(ctx, WORKSPACE, API_KEY_NAME, OPERATOR)
    return token

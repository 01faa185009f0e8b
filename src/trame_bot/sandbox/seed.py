"""The sandbox's two Slack teams and their workspaces, made through the real services as an
operator would with the CLI. Each piece is made only when absent, so starting the sandbox again
changes nothing.

Northwind Integrations is the integrator's own Slack; it hosts the channels of its client Acme
Corp. Globex is a client with a Slack of its own, where its cards must go."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trame_bot.documents import ConnectorDoc, RunRequestDoc, StepDoc, TriggerDoc, WorkflowDoc
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Access, Role, Status, TriggerKind, Verdict
from trame_bot.domain.health import Report
from trame_bot.services import (
    connectors,
    decisions,
    run_requests,
    workflow_status,
    workflows,
    workspaces,
)
from trame_bot.services.context import Context

WORKSPACE = "acme"
WORKSPACE_NAME = "Acme Corp"
APPROVALS = "C0APPROVALS"
OPS = "C0OPS"
CHANNEL_NAMES = {APPROVALS: "acme-approvals", OPS: "acme-ops"}
GLOBEX = "globex"
GLOBEX_NAME = "Globex"
GLOBEX_APPROVALS = "C0GLOBEXAPPROVALS"
GLOBEX_OPS = "C0GLOBEXOPS"
GLOBEX_CHANNEL_NAMES = {GLOBEX_APPROVALS: "globex-approvals", GLOBEX_OPS: "globex-ops"}
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
GLOBEX_OWNER = Person("U0GRACE", "Grace", "owner", Role.OWNER)
GLOBEX_MEMBER = Person("U0HUGO", "Hugo", "member", Role.MEMBER)
GLOBEX_PEOPLE = (GLOBEX_OWNER, GLOBEX_MEMBER)


@dataclass(frozen=True)
class SlackTeam:
    """A Slack team of the fake, the workspace whose channels it holds, and its people."""

    id: str
    name: str
    workspace: str
    channels: dict[str, str]
    people: tuple[Person, ...]
    installs_at_start: bool
    """The integrator's own Slack is installed when the sandbox first starts; a client's
    waits for someone on the page to press Install."""


NORTHWIND_TEAM = SlackTeam(
    "T0NORTHWIND", "Northwind Integrations", WORKSPACE, CHANNEL_NAMES, PEOPLE, True
)
GLOBEX_TEAM = SlackTeam("T0GLOBEX", "Globex", GLOBEX, GLOBEX_CHANNEL_NAMES, GLOBEX_PEOPLE, False)
TEAMS = (NORTHWIND_TEAM, GLOBEX_TEAM)
EVERYONE = tuple(p for team in TEAMS for p in team.people)


def team_of(user: str) -> SlackTeam | None:
    return next((t for t in TEAMS if user in {p.id for p in t.people}), None)


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
SIGN_OFF = workflow_status.SignOff(
    "Dana Ruiz, CFO at Acme", "https://tickets.example.com/ACME-142 (email of 3 March)"
)
ROLLBACK_PLAN = "Pause the workflow, then restore the payroll sheet from yesterday's version."


GLOBEX_CONNECTORS = (
    ConnectorDoc(
        key="globex-netsuite",
        toolkit="netsuite",
        account="globex.netsuite.example.com/integration",
        scopes=["read"],
    ),
    ConnectorDoc(
        key="globex-sheets",
        toolkit="google-sheets",
        account="ops-bot@globex.example.com",
        scopes=["write:logistics"],
    ),
)
GLOBEX_WORKFLOWS = (
    WorkflowDoc(
        key="shipment-sync",
        name="Shipment sync",
        status=Status.PILOT,
        prompt="Copy today's shipments from NetSuite to the logistics sheet.",
        steps=[
            _read("Fetch today's shipments", "globex-netsuite", "netsuite.search"),
            StepDoc(
                name="Append rows to the logistics sheet",
                tool="sheets.append",
                connector="globex-sheets",
                access=Access.WRITE,
            ),
        ],
        triggers=[_schedule("daily")],
    ),
    WorkflowDoc(
        key="customs-filing",
        name="Customs filing",
        status=Status.DRAFT,
        prompt="Prepare the customs declarations for outgoing shipments.",
        steps=[_read("Fetch outgoing shipments", "globex-netsuite", "netsuite.search")],
        triggers=[_schedule("weekly")],
    ),
)


async def seed(ctx: Context) -> bool:
    """Make whatever of the demo workspaces is missing; True when Acme's was new."""
    known = {w.key for w in await workspaces.list_workspaces(ctx)}
    created = WORKSPACE not in known
    await _workspace(ctx, known, NORTHWIND_TEAM, WORKSPACE_NAME, APPROVALS, OPS)
    new_connectors = await _connectors(ctx, WORKSPACE, CONNECTORS)
    await _workflows(ctx, WORKSPACE, WORKFLOWS)
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
    await _workspace(ctx, known, GLOBEX_TEAM, GLOBEX_NAME, GLOBEX_APPROVALS, GLOBEX_OPS)
    await _connectors(ctx, GLOBEX, GLOBEX_CONNECTORS)
    await _workflows(ctx, GLOBEX, GLOBEX_WORKFLOWS)
    return created


async def _workspace(
    ctx: Context, known: set[str], team: SlackTeam, name: str, approvals: str, ops: str
) -> None:
    """The workspace and its members' roles. Its Slack team is bound by the install, not
    here: that is what the operator's install link is for."""
    if team.workspace not in known:
        await workspaces.create_workspace(
            ctx,
            team.workspace,
            workspaces.WorkspaceSettings(name=name, approvals_channel=approvals, ops_channel=ops),
            OPERATOR,
        )
    members = await workspaces.list_members(ctx, team.workspace)
    roles = {m.slack_user_id: m.role for m in members}
    for person in team.people:
        if person.role is not None and person.id not in roles:
            await workspaces.set_role(ctx, team.workspace, person.id, person.role, OPERATOR)


async def _connectors(ctx: Context, workspace: str, docs: Sequence[ConnectorDoc]) -> set[str]:
    present = {c.key for c in await connectors.list_connectors(ctx, workspace)}
    for doc in docs:
        if doc.key not in present:
            await connectors.apply_connector(ctx, workspace, doc, OPERATOR)
    return {doc.key for doc in docs} - present


async def _workflows(ctx: Context, workspace: str, docs: Sequence[WorkflowDoc]) -> None:
    present = {w.key for w in await workflows.list_workflows(ctx, workspace)}
    for doc in docs:
        if doc.key in present:
            continue
        await workflows.apply_workflow(ctx, workspace, doc, OPERATOR)
        if doc.key == LIVE_WORKFLOW:
            await _go_live(ctx, doc.key)


async def _go_live(ctx: Context, key: str) -> None:
    """A production workflow goes live after an approved pilot run and a recorded sign-off."""
    requested = await run_requests.request_run(
        ctx, WORKSPACE, key, RunRequestDoc(requested_by=MEMBER.id), ENGINE
    )
    await decisions.decide(
        ctx, requested.run.id, Actor.slack(ADMIN.id), Verdict.APPROVE, workspace_key=WORKSPACE
    )
    await workflow_status.change_status(
        ctx,
        WORKSPACE,
        key,
        Status.LIVE,
        Actor.slack(ADMIN.id),
        sign_off=SIGN_OFF,
        rollback_plan=ROLLBACK_PLAN,
    )


async def fresh_api_key(ctx: Context, workspace: str = WORKSPACE) -> str:
    """A new key for the page's engine form. Only a key's hash is stored, so the sandbox
    cannot read back the one it made last time: it revokes that one and makes another."""
    active = [
        k
        for k in await workspaces.list_api_keys(ctx, workspace)
        if k.name == API_KEY_NAME and k.revoked_at is None
    ]
    if active:
        await workspaces.revoke_api_key(ctx, workspace, API_KEY_NAME, OPERATOR)
    _, token = await workspaces.create_api_key(ctx, workspace, API_KEY_NAME, OPERATOR)
    return token

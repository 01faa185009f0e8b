"""The incident report for a client: one read gathers a workflow's or connector's window of the
audit log and the export that proves it; the report is audited as an export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot import json_text
from trame_bot.domain import incident
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role
from trame_bot.domain.values import counted
from trame_bot.errors import InvalidInput
from trame_bot.services.access import require
from trame_bot.services.audit import jsonl_line, parse_entity
from trame_bot.services.context import Context
from trame_bot.store import audit as audit_store
from trame_bot.store import audit_export as export_store
from trame_bot.store import connectors as connector_store
from trame_bot.store import reports as store
from trame_bot.store import workflows as workflow_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.audit import AuditFilter
from trame_bot.store.audit_rows import EXPORTED
from trame_bot.store.models import AuditEvent, Workspace

DEFAULT_WINDOW = timedelta(days=7)
MAX_EVENTS = 2_000
"""Report events (timeline rows) at most: past this a report is no longer read, only filed."""
MAX_EXPORTED = 50_000
"""Events of the export beside the report at most (it holds the whole chain span)."""
TOO_LARGE = "narrow the window (since/until) or the entity"


class ReportFormat(StrEnum):
    PDF = "pdf"
    MARKDOWN = "md"
    JSONL = "jsonl"
    """The export that goes beside the report, alone."""


@dataclass(frozen=True)
class ReportBundle:
    report: incident.IncidentReport
    export: str
    """The JSON Lines export of the chain span the report covers, for `audit verify --file`."""

    @property
    def base_name(self) -> str:
        """`incident-acme-workflow-invoice-sync-20261102-20261109`: a file name without suffix."""
        window = self.report.window
        kind, _, key = self.report.entity.partition(":")
        return (
            f"incident-{self.report.workspace}-{kind}-{key}-"
            f"{window.since:%Y%m%d}-{window.until:%Y%m%d}"
        )


def report_entity(text: str) -> tuple[str, str]:
    """`workflow:<key>` or `connector:<key>`; anything else is refused with the shape to use."""
    kind, key = parse_entity(text)
    if kind not in ("workflow", "connector"):
        raise InvalidInput(
            f"a report is about a workflow or a connector, not {text!r}: "
            "use workflow:<key> or connector:<key>",
            {"entity": "workflow:<key> or connector:<key>"},
        )
    return kind, key


async def incident_report(
    ctx: Context,
    key: str,
    entity: str,
    since: datetime | None,
    until: datetime | None,
    fmt: ReportFormat,
    actor: Actor,
    *,
    max_events: int = MAX_EVENTS,
) -> ReportBundle:
    """Gather the report on `entity` over [since, until) (the last 7 days by default) in one
    read, then record it as an audit export. Owners and admins only. A stretch still open is
    counted up to now, not to an `until` still to come."""
    kind, ident = report_entity(entity)
    now = ctx.clock.now()
    until = until or now
    try:
        since = since or until - DEFAULT_WINDOW
    except OverflowError:  # an until in the first week of year 1
        raise InvalidInput("give a since: the window cannot start before year 1") from None
    if since.year < 2 or until.year > 9998:  # a time zone's offset would leave the calendar
        raise InvalidInput("the window must lie between the years 2 and 9998", {"since": "a date"})
    if until <= since:
        raise InvalidInput(
            f"the window ends ({until:%Y-%m-%d %H:%M} UTC) before it starts "
            f"({since:%Y-%m-%d %H:%M} UTC): give an until after the since",
            {"until": "after since"},
        )
    window = incident.Window(since, until)
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        await require(session, workspace, actor, Role.ADMIN, "exporting an incident report")
        report, export = await _gather(
            session, workspace, kind, ident, window, actor, now, max_events
        )
    async with ctx.db.transaction() as session:
        workspace = await workspace_store.get(session, key)
        anchors = report.anchors
        await audit_store.append(
            session,
            workspace,
            at=now,
            actor=actor.audit_name,
            action="audit.exported",
            entity_type="workspace",
            entity_id=workspace.key,
            summary=f"incident report on {report.entity} exported as {fmt.value} "
            f"({counted(len(report.timeline), 'event')})",
            data={
                "report": True,
                "format": fmt.value,
                "events": len(report.timeline),
                "entity_type": kind,
                "entity_id": ident,
                "since": since.isoformat(),
                "until": until.isoformat(),
                "first_seq": anchors.first_seq if anchors else None,
                "last_seq": anchors.last_seq if anchors else None,
            },
        )
    return ReportBundle(report, export)


async def _gather(
    session: AsyncSession,
    workspace: Workspace,
    kind: str,
    ident: str,
    window: incident.Window,
    actor: Actor,
    now: datetime,
    max_events: int,
) -> tuple[incident.IncidentReport, str]:
    if kind == "workflow":
        workflow = await workflow_store.get(session, workspace.id, ident)
        workflows = [workflow]
        connectors = sorted({str(s["connector"]) for s in workflow.steps if s.get("connector")})
        name, entity_key = workflow.name, workflow.key
    else:
        connector = await connector_store.get(session, workspace.id, ident)
        workflows = await workflow_store.using_connector(session, workspace.id, connector.key)
        connectors = [connector.key]
        name, entity_key = f"{connector.key} ({connector.toolkit})", connector.key
    scope = store.Scope(
        workspace.id, [w.id for w in workflows], [w.key for w in workflows], connectors
    )
    rows = await store.events_in(session, scope, window.since, window.until, limit=max_events + 1)
    if len(rows) > max_events:
        raise InvalidInput(
            f"the report would hold more than {max_events} events: {TOO_LARGE}",
            {"since": TOO_LARGE},
        )
    events = [_entry(row) for row in rows]
    before = [_entry(row) for row in await store.states_before(session, scope, window.since)]
    export, anchors = await _export(session, workspace, window)
    report = incident.IncidentReport(
        workspace=workspace.key,
        workspace_name=workspace.name,
        timezone=workspace.timezone,
        entity=f"{kind}:{entity_key}",
        entity_name=name,
        window=window,
        generated_at=now,
        generated_by=actor.audit_name,
        workflows=scope.workflow_keys,
        connectors=connectors,
        timeline=events,
        outages=incident.outages(
            events,
            before,
            workflows=scope.workflow_keys,
            connectors=connectors,
            window=incident.Window(window.since, min(window.until, now)),
        ),
        runs=incident.run_counts(events),
        declines=incident.declines(events),
        remediation=incident.remediation(events),
        anchors=anchors,
    )
    return report, export


async def _export(
    session: AsyncSession, workspace: Workspace, window: incident.Window
) -> tuple[str, incident.Anchors | None]:
    """The chain from the window's first event to its last, as `audit export` writes it."""
    span = await store.chain_span(session, workspace.id, window.since, window.until)
    if span is None:
        return "", None
    if span.length > MAX_EXPORTED:
        raise InvalidInput(
            f"the window holds {span.length} audit events of this workspace and the export "
            f"beside a report holds at most {MAX_EXPORTED}: narrow the window (since/until)",
            {"since": "narrow the window"},
        )
    where = AuditFilter(first_seq=span.first_seq, last_seq=span.last_seq)
    lines: list[str] = []
    first_prev = last_hash = ""
    async for rows in export_store.stream_exported(session, workspace.id, where):
        if not lines:
            first_prev = rows[0][EXPORTED.index("prev_hash")]
        lines.extend(jsonl_line(row, workspace.key) for row in rows)
        last_hash = rows[-1][EXPORTED.index("hash")]
    anchors = incident.Anchors(span.first_seq, span.last_seq, first_prev, last_hash, len(lines))
    return "".join(lines), anchors


def _entry(row: AuditEvent) -> incident.Entry:
    return incident.Entry(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        summary=row.summary,
        reason=row.reason,
        data=json_text.loads(row.data),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )

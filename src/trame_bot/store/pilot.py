"""The events a pilot's record needs (domain/pilot.py), read in SQL as one subquery of the
workflow's row: `/trame status <workflow>` adds it to the statement that finds the workflow
(`store.glance`), so a pilot's status is still one statement; the go-live form and the API's
workflow read run it alone (`pilot_events`), on the driver (`store.direct`).

The subquery is correlated to the workflow's columns: its key, its workspace, its plan's
fingerprint (stored with the plan, `Workflow.fingerprint`) and its steps, whose connectors
the database reads from the JSON. Before the fingerprint was stored, Python computed it from
the plan on every status and passed it to a second statement.

The events are a UNION ALL of three selects, each reading the entity index
(`ix_audit_events_entity`: workspace, entity type, entity id, time): the workflow's saves, the
events of its runs, and its connectors' health changes. One WHERE with the three joined by OR
reads the same rows, but neither database can take it from the index: SQLite searched the
workspace's whole log (0.4 ms a status with a thousand events in the workspace, 29 ms with
100,000, 335 ms with a million, on the event loop), so a status's cost grew with everything
the workspace ever did. As three reads of these entities it grows only with their events.
Every health change of the connectors is read, not only those since the workflow was created
and the last one before: the same index entries are visited either way, and the query stays
three plain ranges."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from sqlalchemy import JSON, ColumnElement, FromClause, bindparam, column, or_, select, union_all

from trame_bot import json_text
from trame_bot.domain.enums import Status
from trame_bot.domain.pilot import HEALTH, SAVED, Event
from trame_bot.store.direct import Lookup, Statement
from trame_bot.store.functions import array_elements, json_rows, json_time
from trame_bot.store.models import AuditEvent, Run, Workflow

_e = AuditEvent.__table__.alias("e")
_run = Run.__table__
_wf = Workflow.__table__


def record_events(wf: FromClause) -> ColumnElement[Any]:
    """The record's events of the workflow whose row is `wf` (a `workflows` table or alias
    of the enclosing query), as one JSON array (`json_rows`) of [seq, at, actor, action,
    entity_type, entity_id, data, reason]: its saves (to find when its version was saved),
    every event of its runs requested in pilot with its current plan (plan and version), and
    every health change of the connectors its steps use (those before the record began give
    their state at its start). In no order: see `events_of`."""

    def events(entity_type: str, *where: Any) -> Any:
        return (
            select(_e.c.seq, _e.c.at, _e.c.actor, _e.c.action, _e.c.entity_type, _e.c.entity_id)
            .add_columns(_e.c.data, _e.c.reason)
            .where(_e.c.workspace_id == wf.c.workspace_id, _e.c.entity_type == entity_type)
            .where(*where)
            .correlate(wf)
        )

    runs_of_plan = (
        select(_run.c.id)
        .where(
            _run.c.workflow_id == wf.c.id,
            _run.c.fingerprint == wf.c.fingerprint,
            _run.c.workflow_status == Status.PILOT,
        )
        .correlate(wf)
    )
    step = array_elements(wf.c.steps).table_valued(column("value", JSON))
    connectors = select(step.c.value["connector"].as_string()).correlate(wf)
    # No ORDER BY here: SQLite would push it into each select and walk the workspace's log in
    # `seq` order to spare a sort. `events_of` sorts the few rows.
    record = union_all(
        events(
            "workflow",
            _e.c.entity_id == wf.c.key,
            or_(*(_e.c.action == action for action in sorted(SAVED))),
        ),
        events("run", _e.c.entity_id.in_(runs_of_plan)),
        events("connector", _e.c.entity_id.in_(connectors), _e.c.action == HEALTH),
    ).subquery("record")
    return select(json_rows(*record.c)).scalar_subquery()


_EVENTS = Statement(
    select(record_events(_wf).label("record")).where(_wf.c.id == bindparam("workflow_id"))
)


def events_of(record: Sequence[Sequence[Any]]) -> list[Event]:
    """The events `record_events` carries, in chain order."""
    events = [
        Event(
            seq=seq,
            at=json_time(at),
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            data=json_text.loads(data),
            reason=reason,
        )
        for seq, at, actor, action, entity_type, entity_id, data, reason in record
    ]
    events.sort(key=attrgetter("seq"))
    return events


async def pilot_events(lookup: Lookup, workflow_id: int) -> list[Event]:
    """The record's events of a workflow (`record_events`), in chain order."""
    rows = await lookup(_EVENTS, {"workflow_id": workflow_id})
    return events_of(rows[0].record) if rows else []

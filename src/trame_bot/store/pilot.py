"""The read a pilot's record needs (domain/pilot.py), in one query on the audit log, run on
the driver (`store.direct`): `/trame status` of a pilot workflow runs it per command.

The query is a UNION ALL of three selects, each reading the entity index
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

from sqlalchemy import bindparam, or_, select, union_all

from trame_bot.domain.enums import Status
from trame_bot.domain.pilot import HEALTH, SAVED
from trame_bot.store.direct import Lookup, Statement
from trame_bot.store.functions import as_list, in_list
from trame_bot.store.lookups import WorkflowRow
from trame_bot.store.models import AuditEvent, Run, Workflow

_e = AuditEvent.__table__.alias("e")
_run = Run.__table__
_runs_of_plan = select(_run.c.id).where(
    _run.c.workflow_id == bindparam("workflow_id"),
    _run.c.fingerprint == bindparam("fingerprint"),
    _run.c.workflow_status == Status.PILOT,
)


def _events(entity_type: str, *where: Any) -> Any:
    return (
        select(_e.c.seq, _e.c.at, _e.c.actor, _e.c.action, _e.c.entity_type, _e.c.entity_id)
        .add_columns(_e.c.data, _e.c.reason)
        .where(
            _e.c.workspace_id == bindparam("workspace_id"), _e.c.entity_type == entity_type, *where
        )
    )


# No ORDER BY here: SQLite would push it into each select and walk the workspace's log in
# `seq` order to spare a sort. The caller sorts the few rows.
_record = union_all(
    _events(
        "workflow",
        _e.c.entity_id == bindparam("workflow_key"),
        or_(*(_e.c.action == action for action in sorted(SAVED))),
    ),
    _events("run", _e.c.entity_id.in_(_runs_of_plan)),
    _events("connector", in_list(_e.c.entity_id, "connectors"), _e.c.action == HEALTH),
).subquery("record")
_EVENTS = Statement(select(*_record.c))


async def pilot_events(
    lookup: Lookup,
    workflow: Workflow | WorkflowRow,
    fingerprint: str,
    connectors: Sequence[str],
) -> list[Any]:
    """In chain order (rows of seq, at, actor, action, entity_type, entity_id, data,
    reason), the workflow's saves (to find when its version was saved), every event of its runs
    requested in pilot with the plan `fingerprint` (plan and version), and every health change
    of `connectors` (those before the record began give their state at its start)."""
    params = {
        "workspace_id": workflow.workspace_id,
        "workflow_id": workflow.id,
        "workflow_key": workflow.key,
        "fingerprint": fingerprint,
        "connectors": as_list(connectors),
    }
    return sorted(await lookup(_EVENTS, params), key=attrgetter("seq"))

"""The read a pilot's record needs (domain/pilot.py), in one query on the audit log, run on
the driver (`store.direct`): `/trame status` of a pilot workflow runs it per command.

The query is a UNION ALL of four selects, each a range of the entity index
(`ix_audit_events_entity`: workspace, entity type, entity id, time): the workflow's saves,
the events of its runs, and its connectors' health changes since the workflow was created and
the last one before. One WHERE with the four joined by OR reads the same rows, but neither
database can take it from the index: SQLite searched the workspace's whole log (0.4 ms a
status with a thousand events in the workspace, 29 ms with 100,000, 335 ms with a million,
on the event loop), so a status's cost grew with everything the workspace ever did. As four
ranges it grows only with what the record counts."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from sqlalchemy import bindparam, func, or_, select, union_all

from trame_bot.domain.enums import Status
from trame_bot.domain.pilot import HEALTH, SAVED
from trame_bot.store.direct import Lookup, Statement
from trame_bot.store.functions import as_list, in_list
from trame_bot.store.lookups import WorkflowRow
from trame_bot.store.models import AuditEvent, Run, Workflow

_e = AuditEvent.__table__.alias("e")
_p = AuditEvent.__table__.alias("p")
_run = Run.__table__
_workspace: Any = bindparam("workspace_id")
_created: Any = bindparam("created_at", type_=AuditEvent.__table__.c.at.type)
_runs_of_plan = select(_run.c.id).where(
    _run.c.workflow_id == bindparam("workflow_id"),
    _run.c.fingerprint == bindparam("fingerprint"),
    _run.c.workflow_status == Status.PILOT,
)
_health_before = (
    select(func.max(_p.c.seq))
    .where(
        _p.c.workspace_id == _workspace,
        _p.c.entity_type == "connector",
        in_list(_p.c.entity_id, "connectors"),
        _p.c.action == HEALTH,
        _p.c.at < _created,
    )
    .group_by(_p.c.entity_id)
)


def _events(*where: Any) -> Any:
    return (
        select(_e.c.seq, _e.c.at, _e.c.actor, _e.c.action, _e.c.entity_type, _e.c.entity_id)
        .add_columns(_e.c.data, _e.c.reason)
        .where(_e.c.workspace_id == _workspace, *where)
    )


def _of(entity_type: str, *where: Any) -> tuple[Any, ...]:
    return (_e.c.entity_type == entity_type, *where)


_health = _of("connector", in_list(_e.c.entity_id, "connectors"), _e.c.action == HEALTH)
# No ORDER BY here: SQLite would push it into each select and walk the workspace's log in
# `seq` order to spare a sort. The caller sorts the few rows.
_record = union_all(
    _events(
        *_of(
            "workflow",
            _e.c.entity_id == bindparam("workflow_key"),
            or_(*(_e.c.action == action for action in sorted(SAVED))),
        )
    ),
    _events(*_of("run", _e.c.entity_id.in_(_runs_of_plan))),
    _events(*_health, _e.c.at >= _created),
    _events(_e.c.seq.in_(_health_before)),
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
    requested in pilot with the plan `fingerprint` (plan and version), and the health
    changes of `connectors` since the workflow was created, with the last one before.

    The workflow's creation bounds the health changes because the version cannot be older,
    and the save time sits in JSON the query cannot read on both databases alike."""
    params = {
        "workspace_id": workflow.workspace_id,
        "workflow_id": workflow.id,
        "workflow_key": workflow.key,
        "fingerprint": fingerprint,
        "connectors": as_list(connectors),
        "created_at": workflow.created_at,
    }
    return sorted(await lookup(_EVENTS, params), key=attrgetter("seq"))

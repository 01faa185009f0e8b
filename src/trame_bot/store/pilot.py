"""The read a pilot's record needs (domain/pilot.py), in one query on the audit log, run on
the driver (`store.direct`): `/trame status` of a pilot workflow runs it per command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select

from trame_bot.domain.enums import Status
from trame_bot.domain.pilot import HEALTH, SAVED
from trame_bot.store.direct import Lookup, Statement
from trame_bot.store.functions import as_list, in_list
from trame_bot.store.lookups import WorkflowRow
from trame_bot.store.models import AuditEvent, Run, Workflow

_e = AuditEvent.__table__.alias("e")
_p = AuditEvent.__table__.alias("p")
_run = Run.__table__
_created: Any = bindparam("created_at", type_=AuditEvent.__table__.c.at.type)
_runs_of_plan = select(_run.c.id).where(
    _run.c.workflow_id == bindparam("workflow_id"),
    _run.c.fingerprint == bindparam("fingerprint"),
    _run.c.workflow_status == Status.PILOT,
)
_health_before = (
    select(func.max(_p.c.seq))
    .where(
        _p.c.workspace_id == bindparam("workspace_id"),
        _p.c.entity_type == "connector",
        in_list(_p.c.entity_id, "connectors"),
        _p.c.action == HEALTH,
        _p.c.at < _created,
    )
    .group_by(_p.c.entity_id)
)
_EVENTS = Statement(
    select(_e.c.seq, _e.c.at, _e.c.actor, _e.c.action, _e.c.entity_type, _e.c.entity_id)
    .add_columns(_e.c.data, _e.c.reason)
    .where(
        _e.c.workspace_id == bindparam("workspace_id"),
        or_(
            and_(
                _e.c.entity_type == "workflow",
                _e.c.entity_id == bindparam("workflow_key"),
                or_(*(_e.c.action == action for action in sorted(SAVED))),
            ),
            and_(_e.c.entity_type == "run", _e.c.entity_id.in_(_runs_of_plan)),
            and_(
                _e.c.entity_type == "connector",
                in_list(_e.c.entity_id, "connectors"),
                _e.c.action == HEALTH,
                or_(_e.c.at >= _created, _e.c.seq.in_(_health_before)),
            ),
        ),
    )
    .order_by(_e.c.seq)
)


async def pilot_events(
    lookup: Lookup,
    workflow: Workflow | WorkflowRow,
    fingerprint: str,
    connectors: Sequence[str],
) -> list[Any]:
    """In chain order (rows of seq, at, actor, action, entity_type, entity_id, data, reason), the workflow's saves (to find when its version was saved), every event of its runs
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
    return await lookup(_EVENTS, params)

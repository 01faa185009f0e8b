"""What a run's approval card shows, read on the driver (`store.direct`): every click, every
decision and every card posted rebuilds a card, so after commands this is the busiest read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from trame_bot.domain.enums import Health
from trame_bot.store.direct import Lookup, Statement
from trame_bot.store.functions import as_list, in_list
from trame_bot.store.models import AuditEvent, Connector, Decision, Run, Workflow, Workspace

_run = Run.__table__
_ws = Workspace.__table__
_wf = Workflow.__table__
_connector = Connector.__table__
_decision = Decision.__table__
_audit = AuditEvent.__table__

_CARD = Statement(
    select(
        _run,
        _ws.c.key.label("workspace_key"),
        _ws.c.approvals_channel,
        _wf.c.key.label("workflow_key"),
        _wf.c.name.label("workflow_name"),
        _wf.c.production,
        _wf.c.prompt,
    )
    .select_from(
        _run.join(_ws, _ws.c.id == _run.c.workspace_id).join(_wf, _wf.c.id == _run.c.workflow_id)
    )
    .where(_run.c.id == bindparam("run"))
)
_CARD_MESSAGE = Statement(
    select(_run.c.slack_channel, _run.c.slack_ts, _ws.c.approvals_channel)
    .select_from(_run.join(_ws, _ws.c.id == _run.c.workspace_id))
    .where(_run.c.id == bindparam("run"))
)
_HEALTH = Statement(
    select(_connector.c.key, _connector.c.health).where(
        _connector.c.workspace_id == bindparam("workspace"), in_list(_connector.c.key, "keys")
    )
)
_DECISIONS = Statement(
    select(
        _decision.c.user,
        _decision.c.verdict,
        _decision.c.reason,
        _decision.c.category,
        _decision.c.at,
    )
    .where(_decision.c.run_id == bindparam("run"))
    .order_by(_decision.c.at, _decision.c.id)
)
_CONNECTOR_EVENTS = Statement(
    select(_audit.c.entity_id, _audit.c.data).where(
        _audit.c.workspace_id == bindparam("workspace"),
        _audit.c.entity_type == "connector",
        in_list(_audit.c.entity_id, "keys"),
        _audit.c.action == bindparam("action"),
        _audit.c.at >= bindparam("since", type_=_audit.c.at.type),
    )
)


async def card_of(lookup: Lookup, run_id: str) -> Any | None:
    """A run's columns with its workspace's key and approvals channel and its workflow's key,
    name, production flag and prompt: what its approval card shows, in one statement."""
    rows = await lookup(_CARD, {"run": run_id})
    return rows[0] if rows else None


async def card_message(lookup: Lookup, run_id: str) -> tuple[str, str | None] | None:
    """Where a run's card is (channel, ts), or will be posted (ts None); None: no such run."""
    rows = await lookup(_CARD_MESSAGE, {"run": run_id})
    if not rows:
        return None
    return rows[0].slack_channel or rows[0].approvals_channel, rows[0].slack_ts


async def health_of(lookup: Lookup, workspace_id: int, keys: Sequence[str]) -> dict[str, Health]:
    """Health of those of `keys` that are this workspace's connectors; others are absent."""
    if not keys:
        return {}
    rows = await lookup(_HEALTH, {"workspace": workspace_id, "keys": as_list(keys)})
    return {row.key: row.health for row in rows}


async def decisions_of(lookup: Lookup, run_id: str) -> Sequence[Any]:
    """A run's decisions in order: user, verdict, reason, category, at."""
    return await lookup(_DECISIONS, {"run": run_id})


async def connector_events(
    lookup: Lookup, workspace_id: int, action: str, keys: Sequence[str], since: datetime
) -> Sequence[Any]:
    """(entity_id, data) of the workspace's connector events `action` about `keys` since."""
    if not keys:
        return []
    params = {"workspace": workspace_id, "keys": as_list(keys), "action": action, "since": since}
    return await lookup(_CONNECTOR_EVENTS, params)

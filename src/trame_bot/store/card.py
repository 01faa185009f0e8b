"""What a run's approval card shows, read on the driver (`store.direct`) in one statement:
every click, every decision and every card posted rebuilds a card, so after commands this is
the busiest read.

The run's row carries, as JSON arrays (`json_rows`) from correlated subqueries, the health of
the connectors its steps name, its decisions, and the widening changes of those connectors
since it was requested; the database reads the connectors from the plan's JSON. Before, these
were four statements, four round trips on PostgreSQL for each card posted or updated."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, bindparam, column, select

from trame_bot import json_text
from trame_bot.domain.enums import Health, Verdict
from trame_bot.domain.views import DecisionView
from trame_bot.store.connectors import WIDENED_IN
from trame_bot.store.direct import Lookup, Statement
from trame_bot.store.functions import array_elements, json_rows, json_time
from trame_bot.store.models import AuditEvent, Connector, Decision, Run, Workflow, Workspace

_run = Run.__table__
_ws = Workspace.__table__
_wf = Workflow.__table__
_connector = Connector.__table__
_decision = Decision.__table__
_audit = AuditEvent.__table__


def _plan_connectors() -> Any:
    """The connectors the run's steps name, read by the database from its plan's JSON."""
    step = array_elements(_run.c.plan).table_valued(column("value", JSON))
    return select(step.c.value["connector"].as_string()).correlate(_run)


def _of_run(*columns: Any) -> Any:
    """`columns` of the rows the WHERE picks, as one JSON array (`json_rows`) per run row."""
    return select(json_rows(*columns)).correlate(_run)


_HEALTH = _of_run(_connector.c.key, _connector.c.health).where(
    _connector.c.workspace_id == _run.c.workspace_id,
    _connector.c.key.in_(_plan_connectors()),
)
_DECISIONS = _of_run(
    _decision.c.id,
    _decision.c.user,
    _decision.c.verdict,
    _decision.c.reason,
    _decision.c.category,
    _decision.c.at,
).where(_decision.c.run_id == _run.c.id)
_WIDENED = _of_run(_audit.c.entity_id, _audit.c.data).where(
    _audit.c.workspace_id == _run.c.workspace_id,
    _audit.c.entity_type == "connector",
    _audit.c.entity_id.in_(_plan_connectors()),
    _audit.c.action == WIDENED_IN,
    _audit.c.at >= _run.c.requested_at,
)
_CARD = Statement(
    select(
        _run,
        _ws.c.key.label("workspace_key"),
        _ws.c.approvals_channel,
        _wf.c.key.label("workflow_key"),
        _wf.c.name.label("workflow_name"),
        _wf.c.production,
        _wf.c.prompt,
        _HEALTH.scalar_subquery().label("card_health"),
        _DECISIONS.scalar_subquery().label("card_decisions"),
        _WIDENED.scalar_subquery().label("card_widened"),
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


async def card_of(lookup: Lookup, run_id: str) -> Any | None:
    """A run's columns with its workspace's key and approvals channel, its workflow's key,
    name, production flag and prompt, and the JSON columns `health_of`, `decisions_of` and
    `widened` read: what its approval card shows, in one statement."""
    rows = await lookup(_CARD, {"run": run_id})
    return rows[0] if rows else None


async def card_message(lookup: Lookup, run_id: str) -> tuple[str, str | None] | None:
    """Where a run's card is (channel, ts), or will be posted (ts None); None: no such run."""
    rows = await lookup(_CARD_MESSAGE, {"run": run_id})
    if not rows:
        return None
    return rows[0].slack_channel or rows[0].approvals_channel, rows[0].slack_ts


def health_of(row: Any) -> dict[str, Health]:
    """Health of the card row's connectors that are its workspace's (others are absent)."""
    return {key: Health(health) for key, health in row.card_health}


def decisions_of(row: Any) -> list[DecisionView]:
    """The card row's decisions in the order they were made."""
    ordered = sorted(row.card_decisions, key=lambda d: (json_time(d[5]), d[0]))
    return [
        DecisionView(user, Verdict(verdict), reason, category, json_time(at))
        for _, user, verdict, reason, category, at in ordered
    ]


def widened(row: Any) -> set[str]:
    """The card row's connectors whose scopes were widened since the run was requested."""
    return {key for key, data in row.card_widened if json_text.loads(data).get("widened")}

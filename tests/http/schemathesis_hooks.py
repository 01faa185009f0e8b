"""Schemathesis hooks for test_schemathesis (loaded by its CLI through SCHEMATHESIS_HOOKS).

A few rules of the API cannot be said in JSON Schema, so the document says them in words and
lists the 422 they lead to; a client generated from the document has to follow them, and so
does the generator here. They apply to requests meant to be valid only: a request meant to be
invalid is left as it was drawn, so it must still be refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import schemathesis
from schemathesis import Case, HookContext

from trame_bot.domain.scopes import read_only
from trame_bot.domain.values import parse_moment
from trame_bot.errors import InvalidInput
from trame_bot.http.rules import AGE

CONNECTORS = ("crm", "sheets")
"""The connectors of the workspace the test seeds (tests.factories.governed_workspace)."""
WRITABLE = "sheets"
"""The seeded connector granted write (`write:finance`): writing steps go through it."""
CREATABLE = ("draft", "pilot")
ADMIN = "U0ADMIN"
"""An admin of the seeded workspace (tests.factories.ADMIN)."""
ALERT_ACTIONS = {
    ("POST", "/alerts/{id}/pause-affected"),
    ("POST", "/alerts/{id}/resume"),
    ("POST", "/connectors/{key}/pause-affected"),
    ("POST", "/connectors/{key}/resume"),
}
LONGEST_WAIT = 0.2
"""Seconds. A long-poll on a pending run holds for all of `wait` (up to 30): the test keeps
each one short to stay fast; tests/http/test_api.py covers the long-poll itself."""


@schemathesis.hook
def map_case(_ctx: HookContext, case: Case) -> Case:
    operation = (case.operation.method.upper(), case.operation.path)
    if operation == ("GET", "/runs/{id}"):
        # Also in a request meant to be invalid: its fault is elsewhere if `wait` is valid.
        _shorten_wait(case)
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return case
    if operation == ("GET", "/audit/report"):
        _window_in_order(case)
    if operation in ALERT_ACTIONS and isinstance(case.body, dict):
        # Acting on an alert takes a member's (resuming an admin's) role, which a generator
        # cannot guess: as the seeded admin, a valid request reaches the alert's own rules
        # (no such alert, already done, connector unhealthy) instead of the role check alone.
        case.body["actor"] = ADMIN
    if isinstance(case.body, dict) and isinstance(case.path_parameters, dict):
        if operation in (("PUT", "/workflows/{key}"), ("PUT", "/connectors/{key}")):
            # The body's key must be the URL's.
            case.body["key"] = case.path_parameters.get("key", case.body.get("key"))
        if operation == ("PUT", "/workflows/{key}"):
            _follow_workflow_rules(case.body)
        if operation == ("PUT", "/connectors/{key}") and case.body.get("key") == WRITABLE:
            _stay_writable(case.body)
    return case


def _window_in_order(case: Case) -> None:
    """A report's window ends after it starts. An age, or an `until` left out, counts from the
    server's now (the test's clock), so then `since` is dropped: the default week is valid."""
    query = case.query if isinstance(case.query, dict) else None
    if not query or not query.get("since"):
        return
    now = datetime.now(UTC)
    try:
        since, until = parse_moment(query["since"], now), parse_moment(query["until"], now)
    except (InvalidInput, KeyError, TypeError, AttributeError):
        query.pop("since")
        return
    if any(re.search(AGE, str(query[name])) for name in ("since", "until")):
        query.pop("since")
        return
    if since == until:
        query.pop("since")
    elif until < since:
        query["since"], query["until"] = query["until"], query["since"]


def _stay_writable(body: dict[str, Any]) -> None:
    """Re-applying the connector writing steps go through keeps a write grant: narrowing it is
    allowed, but would make the next generated workflow's write step rightly refused."""
    scopes = body.get("scopes")
    if isinstance(scopes, list) and all(isinstance(s, str) for s in scopes) and read_only(scopes):
        body["scopes"] = [*scopes[:99], "write"]


def _shorten_wait(case: Case) -> None:
    query = case.query if isinstance(case.query, dict) else None
    if not query or isinstance(query.get("wait"), bool):
        return
    try:
        wait = float(query["wait"])
    except (KeyError, TypeError, ValueError):
        return
    if 0 <= wait <= 30:
        query["wait"] = min(wait, LONGEST_WAIT)


def _follow_workflow_rules(body: dict[str, Any]) -> None:
    # Each step names a connector of the workspace; one granted write when the step writes.
    for i, step in enumerate(body.get("steps") or []):
        if isinstance(step, dict):
            writes = step.get("access") == "write"
            step["connector"] = WRITABLE if writes else CONNECTORS[i % len(CONNECTORS)]
    # A new workflow starts as draft or pilot (the status of an existing one is not changed
    # this way, so the rule holds for every request).
    if body.get("status") not in CREATABLE:
        body["status"] = CREATABLE[0]
    # Trigger keys are unique, compared as the server does (stripped, lowercased).
    triggers, seen = body.get("triggers"), set()
    if isinstance(triggers, list):
        kept = []
        for trigger in triggers:
            key = trigger.get("key") if isinstance(trigger, dict) else None
            folded = key.strip().lower() if isinstance(key, str) else key
            if folded not in seen:
                seen.add(folded)
                kept.append(trigger)
        body["triggers"] = kept

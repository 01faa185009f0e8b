"""Properties over arbitrary input: the `/trame` parser, the plan fingerprint, mrkdwn escaping
and every Block Kit builder that shows user text. Pure functions, so hypothesis runs them fast."""

from __future__ import annotations

import re
import shlex
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from trame_bot.domain.enums import (
    Access,
    DeclineCategory,
    Health,
    RunState,
    Source,
    Status,
    Verdict,
)
from trame_bot.domain.plan import Step, fingerprint, steps_from_dicts
from trame_bot.domain.values import match_workflow
from trame_bot.domain.views import DecisionView, RunCard, StepView
from trame_bot.errors import InvalidInput
from trame_bot.sandbox.block_kit import block_errors
from trame_bot.slack import commands
from trame_bot.slack.blocks.card import approval_card
from trame_bot.slack.blocks.notices import channel_notice, outcome_dm, thread_reply
from trame_bot.slack.commands import MAX_COMMAND_TEXT, SUBCOMMANDS, parse
from trame_bot.slack.text import clean, escape

FAST = settings(max_examples=100, deadline=None, database=None)
SLOW = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NAMES = {*SUBCOMMANDS, "audit export"}

# -- the /trame parser -----------------------------------------------------------------------

user_ids = st.from_regex(r"[UW][A-Z0-9]{2,12}", fullmatch=True)


@FAST
@given(text=st.text(max_size=300) | st.text(max_size=20).map(lambda t: t + "x" * 4000))
def test_the_parser_takes_any_text_and_names_a_known_subcommand(text: str) -> None:
    try:
        command = parse(text)
    except InvalidInput:
        assert len(text) > MAX_COMMAND_TEXT
        return
    assert len(text) <= MAX_COMMAND_TEXT
    assert command.name in NAMES
    assert all(isinstance(word, str) for word in command.words)


@FAST
@given(
    text=st.text(
        st.sampled_from([" ", "\t", "\r", "\n", "\x0b", "\xa0", "\u2003", "#", "a", "é"])
        | st.characters(blacklist_characters="\"'\\"),
        max_size=60,
    ).map(clean)
)
def test_words_without_quotes_split_as_shlex_splits_them(text: str) -> None:
    """The parser's fast path (no quote, no backslash) splits any text as shlex does."""
    assert commands._split(text) == shlex.split(text)


@FAST
@given(
    user=user_ids,
    name=st.none() | st.text(st.characters(blacklist_characters=">"), max_size=30),
    verb=st.sampled_from(["role", "ROLE", "Role"]),
)
def test_a_mention_becomes_the_bare_user_id(user: str, name: str | None, verb: str) -> None:
    mention = f"<@{user}>" if name is None else f"<@{user}|{name}>"
    assert parse(f"{verb} {mention} admin") == parse(f"role {user} admin")
    assert parse(f"  {verb}\t{mention}   admin ").words == (user, "admin")


_word_chars = st.characters(whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=0x24F)
_words = st.lists(st.text(_word_chars, min_size=1, max_size=8), min_size=1, max_size=4)
_keys = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,15}", fullmatch=True)
_tails = st.lists(st.text(min_size=1, max_size=8).map(lambda w: "#" + w), max_size=4)
"""Trailing words: they start with `#`, which no key or name here holds, so never extend one."""


def _recase(text: str, flips: list[bool]) -> str:
    """Some letters upper case, some lower case (those whose case round-trips)."""
    out = []
    for char, flip in zip(text, flips + [False] * len(text), strict=False):
        other = char.upper() if flip else char.lower()
        out.append(other if len(other) == 1 and other.lower() == char.lower() else char)
    return "".join(out)


@FAST
@given(
    workflows=st.lists(st.tuples(_keys, _words.map(" ".join)), min_size=1, max_size=6),
    pick=st.integers(0, 5),
    by_key=st.booleans(),
    flips=st.lists(st.booleans(), max_size=40),
    tail=_tails,
)
def test_a_workflow_is_found_by_key_or_name_in_any_case_followed_by_anything(
    workflows: list[tuple[str, str]], pick: int, by_key: bool, flips: list[bool], tail: list[str]
) -> None:
    names = [ident.lower() for pair in workflows for ident in pair]
    assume(len(names) == len(set(names)))  # keys are unique; here names are too, and distinct
    key, name = workflows[pick % len(workflows)]
    typed = _recase(key if by_key else name, flips)
    found = match_workflow((*typed.split(" "), *tail), workflows)
    assert found == (key, tuple(tail))


@FAST
@given(words=st.lists(st.text(max_size=10), max_size=6))
def test_no_workflows_match_nothing(words: list[str]) -> None:
    assert match_workflow(tuple(words), []) is None


# -- the plan fingerprint --------------------------------------------------------------------

_value = st.text(min_size=1, max_size=12)
_step_dicts = st.fixed_dictionaries(
    {
        "name": _value,
        "tool": _value,
        "connector": _value,
        "action": st.none() | _value,
        "access": st.sampled_from(["read", "write"]),
    }
)
_plans = st.lists(_step_dicts, min_size=1, max_size=6)
_spaces = st.text(st.sampled_from(" \t\n\r\u00a0\u2003"), max_size=3)
PLANNED = ("tool", "connector", "action")


def _canonical(value: str | None) -> str | None:
    return None if value is None else unicodedata.normalize("NFC", value.strip())


@FAST
@given(plan=_plans, version=st.integers(1, 10_000), data=st.data())
def test_the_fingerprint_ignores_key_order_whitespace_and_normal_form(
    plan: list[dict[str, Any]], version: int, data: st.DataObject
) -> None:
    expected = fingerprint(steps_from_dicts(plan), version)
    respelled = []
    for step in plan:
        around = data.draw(_spaces), data.draw(_spaces)
        form = data.draw(st.sampled_from(["NFC", "NFD"]))
        changed = {
            k: (
                f"{around[0]}{unicodedata.normalize(form, v)}{around[1]}"
                if k in PLANNED and v is not None
                else v
            )
            for k, v in step.items()
        }
        changed["name"] = data.draw(_value)  # names are not part of the plan
        keys = data.draw(st.permutations(list(changed)))
        respelled.append({k: changed[k] for k in keys})
    assert fingerprint(steps_from_dicts(respelled), version) == expected


@FAST
@given(
    plan=_plans,
    version=st.integers(1, 10_000),
    index=st.integers(0, 5),
    part=st.sampled_from(["tool", "connector", "action", "access", "version"]),
    new=st.none() | _value,
    other_version=st.integers(1, 10_000),
)
def test_the_fingerprint_changes_with_any_planned_part(
    plan: list[dict[str, Any]],
    version: int,
    index: int,
    part: str,
    new: str | None,
    other_version: int,
) -> None:
    before = fingerprint(steps_from_dicts(plan), version)
    step = dict(plan[index % len(plan)])
    changed = [dict(s) for s in plan]
    if part == "version":
        assume(other_version != version)
        version = other_version
    elif part == "access":
        step["access"] = "write" if step["access"] == "read" else "read"
    else:
        assume(new is not None or part == "action")
        assume(_canonical(new) != _canonical(step[part]))
        step[part] = new
    changed[index % len(plan)] = step
    assert fingerprint(steps_from_dicts(changed), version) != before


@FAST
@given(plan=st.lists(_step_dicts, min_size=2, max_size=6), data=st.data())
def test_the_fingerprint_changes_with_the_step_order(
    plan: list[dict[str, Any]], data: st.DataObject
) -> None:
    steps = list(steps_from_dicts(plan))
    i = data.draw(st.integers(0, len(steps) - 1))
    j = data.draw(st.integers(0, len(steps) - 1))

    def planned(step: Step) -> tuple[Any, ...]:
        return (*(_canonical(getattr(step, p)) for p in PLANNED), step.access)

    assume(planned(steps[i]) != planned(steps[j]))
    swapped = steps[:]
    swapped[i], swapped[j] = steps[j], steps[i]
    assert fingerprint(swapped, 1) != fingerprint(steps, 1)


# -- escaping and Block Kit ------------------------------------------------------------------

HOSTILE_BITS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U0BOSS>",
    "<@U0BOSS|boss>",
    "<http://evil.example|click>",
    "<!date^1^{date}|x>",
    "<#C0SECRET>",
    "*",
    "`",
    "_",
    "~",
    "&",
    "&lt;",
    "&amp;",
    "<",
    ">",
    "\x00",
    "\x1b",
    "\u202e",
    "\n",
    "'; DROP TABLE runs; --",
]
hostile = st.lists(
    st.sampled_from(HOSTILE_BITS) | st.text(max_size=20), min_size=1, max_size=8
).map("".join)
long_hostile = hostile | st.text(min_size=1, max_size=3).map(lambda t: (t + "<!here> ") * 600)
OWN_DATES = re.compile(r"<!date\^\d+\^\{date_short_pretty\} at \{time\}\|[0-9: -]+UTC>")
INJECTED = ("<!", "<@U0BOSS", "<http://evil", "<#C0SECRET")
_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


@FAST
@given(text=hostile | st.text())
def test_escaped_text_cannot_form_a_mention_link_or_entity(text: str) -> None:
    out = escape(text)
    assert "<" not in out
    assert ">" not in out
    assert not _ENTITY.search(out), "every & starts &amp; &lt; or &gt;"
    assert "*" not in out
    assert "`" not in out
    back = out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert back == text.replace("*", "∗").replace("`", "ˋ"), "nothing else is lost"


def _said(message: tuple[str, list[dict[str, Any]]]) -> list[str]:
    """The notification text and every mrkdwn text, the bot's own date tokens taken out."""
    text, blocks = message
    found = [text]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return [OWN_DATES.sub("", t) for t in found]


def assert_valid_and_inert(message: tuple[str, list[dict[str, Any]]]) -> None:
    text, blocks = message
    assert block_errors(blocks) == []
    assert 0 < len(text) <= 40_000
    for said in _said(message):
        for bad in INJECTED:
            assert bad not in said, (bad, said)


_moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
_users = user_ids.filter(lambda u: u != "U0BOSS") | hostile
_steps = st.builds(
    StepView,
    name=long_hostile,
    tool=hostile,
    connector=hostile,
    access=st.sampled_from(Access),
    health=st.none() | st.sampled_from(Health),
)
_decisions = st.builds(
    DecisionView,
    user=_users,
    verdict=st.sampled_from(Verdict),
    reason=st.none() | long_hostile,
    category=st.none() | st.sampled_from([c.value for c in DeclineCategory]),
    at=_moments,
)


@st.composite
def run_cards(draw: st.DrawFn) -> RunCard:
    requested_at = draw(_moments)
    state = draw(st.sampled_from(RunState))
    return RunCard(
        run_id=draw(hostile),
        workspace_key=draw(hostile),
        channel="C0APPROVALS",
        slack_ts=None,
        workflow_key=draw(long_hostile),
        workflow_name=draw(long_hostile),
        workflow_status=draw(st.sampled_from(Status)),
        production=draw(st.booleans()),
        requested_by=draw(st.none() | _users),
        source=draw(st.sampled_from(Source)),
        trigger=draw(st.none() | hostile),
        steps=tuple(draw(st.lists(_steps, min_size=1, max_size=30))),
        details=draw(st.dictionaries(hostile, hostile, max_size=12)),
        prompt_warnings=tuple(
            draw(st.lists(st.sampled_from(["the prompt contains a URL", "a long id"])))
        ),
        fingerprint=draw(st.text("0123456789abcdef", min_size=64, max_size=64)),
        approvals=draw(st.integers(0, 10)),
        required_approvals=draw(st.integers(1, 10)),
        reviewers=tuple(draw(st.lists(_users, max_size=15))),
        state=state,
        reason=draw(st.none() | long_hostile),
        decided_by=draw(st.none() | _users),
        decided_at=None if state is RunState.PENDING else draw(_moments),
        requested_at=requested_at,
        expires_at=draw(st.none() | st.just(requested_at + timedelta(days=1))),
        decisions=tuple(draw(st.lists(_decisions, max_size=10))),
    )


@SLOW
@given(card=run_cards())
def test_an_approval_card_is_valid_and_inert_whatever_the_run_holds(card: RunCard) -> None:
    # Production cards are the known exception (their confirmation dialog), asserted below.
    assert_valid_and_inert(approval_card(replace(card, production=False)))


def test_a_production_approval_card_is_inert_too() -> None:
    at = datetime(2026, 1, 5, tzinfo=UTC)
    card = RunCard(
        run_id="r1",
        workspace_key="acme",
        channel="C0APPROVALS",
        slack_ts=None,
        workflow_key="evil",
        workflow_name="<http://evil.example|click> <!here>",
        workflow_status=Status.PILOT,
        production=True,
        requested_by="U0MEMBER",
        source=Source.MANUAL,
        trigger=None,
        steps=(StepView("Fetch", "crm.query", "crm", Access.READ, Health.OK),),
        details={},
        prompt_warnings=(),
        fingerprint="0" * 64,
        approvals=0,
        required_approvals=1,
        reviewers=(),
        state=RunState.PENDING,
        reason=None,
        decided_by=None,
        decided_at=None,
        requested_at=at,
        expires_at=at + timedelta(days=1),
    )
    assert_valid_and_inert(approval_card(card))


other_events = st.from_regex(r"[a-z_]{1,12}\.[a-z_]{1,20}", fullmatch=True)
"""Event names are the outbox's own identifiers, never user text; unknown ones still render."""
_data = st.fixed_dictionaries(
    {},
    optional={
        "user": _users,
        "actor": _users,
        "verdict": st.sampled_from(["approve", "decline"]),
        "category": st.sampled_from([c.value for c in DeclineCategory]),
        "reason": long_hostile,
        "approvals": st.integers(0, 10),
        "required": st.integers(1, 10),
        "state": st.sampled_from([s.value for s in RunState]) | hostile,
        "reviewers": st.lists(_users, max_size=25),
        "name": long_hostile,
        "workflow": hostile,
        "decided_by": _users,
        "run_id": hostile,
        "before": st.sampled_from([s.value for s in Status]) | hostile,
        "after": st.sampled_from([s.value for s in Status]) | hostile,
        "connector": hostile,
        "error": long_hostile,
        "workflows": st.lists(
            st.fixed_dictionaries(
                {"name": long_hostile, "status": st.sampled_from([s.value for s in Status])}
            ),
            max_size=20,
        ),
    },
)


@FAST
@given(
    event=st.sampled_from(["run.decision", "run.expired", "run.cancelled", "run.reminder"])
    | other_events,
    data=_data,
)
def test_a_thread_reply_is_valid_and_inert(event: str, data: dict[str, Any]) -> None:
    assert_valid_and_inert(thread_reply(event, data))


@FAST
@given(event=st.sampled_from(["run.decided", "run.expired", "run.cancelled"]), data=_data)
def test_an_outcome_dm_is_valid_and_inert(event: str, data: dict[str, Any]) -> None:
    assert_valid_and_inert(outcome_dm(event, data))


@FAST
@given(
    event=st.sampled_from(
        ["workflow.status_changed", "connector.needs_attention", "connector.recovered"]
    )
    | other_events,
    data=_data,
)
def test_a_channel_notice_is_valid_and_inert(event: str, data: dict[str, Any]) -> None:
    assert_valid_and_inert(channel_notice(event, data))

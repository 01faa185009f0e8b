"""The plan fingerprint an approval binds to: what changes it, what must not."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import replace
from random import Random
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trame_bot.domain.enums import Access
from trame_bot.domain.plan import (
    Step,
    canonical_json,
    connectors_of,
    fingerprint,
    steps_from_dicts,
)

READ_DEALS = Step("read deals", "salesforce", "crm", Access.READ, "list_deals")
POST = Step("post summary", "slack", "slack-ops", Access.WRITE, "post_message")
PLAN = (READ_DEALS, POST)


def test_known_answer() -> None:
    """Pins the canonical form of the docstring, so a fingerprint computed by another process
    (or another release) for the same plan stays equal."""
    canonical = {
        "version": 3,
        "steps": [
            {"tool": "salesforce", "connector": "crm", "action": "list_deals", "access": "read"},
            {
                "tool": "slack",
                "connector": "slack-ops",
                "action": "post_message",
                "access": "write",
            },
        ],
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert text.startswith('{"steps":[{"access":"read","action":"list_deals","connector":"crm"')
    assert fingerprint(PLAN, 3) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_known_answer_with_unicode_and_no_action() -> None:
    steps = [Step("x", unicodedata.normalize("NFD", " Café "), "crm", Access.WRITE)]
    text = (
        '{"steps":[{"access":"write","action":null,"connector":"crm","tool":"Café"}],"version":1}'
    )
    assert fingerprint(steps, 1) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_is_a_sha256_hex_digest() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint(PLAN, 1))


@pytest.mark.parametrize(
    "same",
    [
        pytest.param((replace(READ_DEALS, name="fetch the deals"), POST), id="step renamed"),
        pytest.param(
            (
                replace(
                    READ_DEALS, tool=" salesforce\n", connector="\tcrm ", action=" list_deals "
                ),
                POST,
            ),
            id="surrounding whitespace",
        ),
    ],
)
def test_unchanged_by(same: tuple[Step, ...]) -> None:
    assert fingerprint(same, 3) == fingerprint(PLAN, 3)


@pytest.mark.parametrize(
    ("changed", "version"),
    [
        pytest.param((replace(READ_DEALS, tool="hubspot"), POST), 3, id="tool"),
        pytest.param((replace(READ_DEALS, connector="crm-eu"), POST), 3, id="connector"),
        pytest.param((replace(READ_DEALS, action="delete_deals"), POST), 3, id="action"),
        pytest.param((replace(READ_DEALS, action=None), POST), 3, id="action removed"),
        pytest.param((replace(READ_DEALS, access=Access.WRITE), POST), 3, id="access"),
        pytest.param((POST, READ_DEALS), 3, id="order"),
        pytest.param((READ_DEALS,), 3, id="step removed"),
        pytest.param((READ_DEALS, POST, POST), 3, id="step added"),
        pytest.param(PLAN, 4, id="version"),
    ],
)
def test_changed_by(changed: tuple[Step, ...], version: int) -> None:
    assert fingerprint(changed, version) != fingerprint(PLAN, 3)


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_unicode_forms_are_equal(form: Literal["NFC", "NFD"]) -> None:
    def plan(text: str) -> list[Step]:
        return [Step("é", text, "crm", Access.READ, f"créer {text}")]

    nfc = unicodedata.normalize("NFC", "Société Générale")
    other = unicodedata.normalize(form, nfc)
    assert fingerprint(plan(other), 1) == fingerprint(plan(nfc), 1)


def test_key_order_of_the_documents_does_not_matter() -> None:
    forward = [
        {"name": "a", "tool": "slack", "connector": "ops", "action": "post", "access": "write"}
    ]
    backward = [dict(reversed(forward[0].items()))]
    assert fingerprint(steps_from_dicts(backward), 2) == fingerprint(steps_from_dicts(forward), 2)


_text = st.text(min_size=1, max_size=12)
_step_dicts = st.fixed_dictionaries(
    {
        "name": _text,
        "tool": _text,
        "connector": _text,
        "action": st.none() | _text,
        "access": st.sampled_from(["read", "write"]),
    }
)


@given(raw=st.lists(_step_dicts, max_size=5), version=st.integers(1, 10_000), rnd=st.randoms())
def test_shuffled_key_order_gives_the_same_fingerprint(
    raw: list[dict[str, Any]], version: int, rnd: Random
) -> None:
    shuffled = []
    for item in raw:
        pairs = list(item.items())
        rnd.shuffle(pairs)
        shuffled.append(dict(pairs))
    assert fingerprint(steps_from_dicts(shuffled), version) == fingerprint(
        steps_from_dicts(raw), version
    )


def test_canonical_json() -> None:
    value = {"b": [1, {"z": None, "é": unicodedata.normalize("NFD", "é")}], "a": "x"}
    assert canonical_json(value) == '{"a":"x","b":[1,{"z":null,"é":"é"}]}'


def test_step_round_trips_through_a_dict() -> None:
    assert Step.from_dict(READ_DEALS.to_dict()) == READ_DEALS
    assert steps_from_dicts([POST.to_dict(), READ_DEALS.to_dict()]) == (POST, READ_DEALS)


def test_connectors_in_order_of_first_use() -> None:
    steps = [POST, READ_DEALS, replace(POST, name="again"), replace(READ_DEALS, connector="erp")]
    assert connectors_of(steps) == ["slack-ops", "crm", "erp"]

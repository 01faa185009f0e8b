"""Least privilege: what scopes grant, refused writes, over-privileged and widened grants
(the grammar is in trame_bot.domain.scopes and docs/governance.md)."""

from __future__ import annotations

import pytest

from trame_bot.domain.enums import Access
from trame_bot.domain.scopes import (
    Grant,
    Power,
    covers,
    grant,
    over_privileged,
    over_privileged_in,
    read_only,
    widened,
    write_refusals,
)

R, W = Access.READ, Access.WRITE


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("read", Grant("read", Power.READ)),
        ("READ", Grant("READ", Power.READ)),
        ("read:#ops", Grant("read:#ops", Power.READ, "#ops")),
        ("write", Grant("write", Power.WRITE)),
        (" write:#ops ", Grant("write:#ops", Power.WRITE, "#ops")),
        ("Write:folder/X", Grant("Write:folder/X", Power.WRITE, "folder/X")),
        ("*", Grant("*", Power.BROAD)),
        ("admin", Grant("admin", Power.BROAD)),
        ("ALL", Grant("ALL", Power.BROAD)),
        ("write:", Grant("write:", Power.UNKNOWN)),
        ("chat:write", Grant("chat:write", Power.UNKNOWN)),
        ("crm.objects.read", Grant("crm.objects.read", Power.UNKNOWN)),
    ],
)
def test_a_scope_word_grants(word: str, expected: Grant) -> None:
    assert grant(word) == expected


@pytest.mark.parametrize(
    ("scopes", "access", "covered"),
    [
        (["read"], R, True),
        (["read"], W, False),
        (["read:#ops", "READ"], W, False),
        (["read", "write:#ops"], W, True),
        (["write"], W, True),
        (["admin"], W, True),
        (["*"], W, True),
        # the source system's own words may grant write: never refused on their account
        (["read", "chat:write"], W, True),
        (["crm.objects.read"], W, True),
        # nothing recorded: nothing checked
        ([], W, True),
        (["  "], W, True),
    ],
)
def test_a_step_is_covered(scopes: list[str], access: Access, covered: bool) -> None:
    assert covers(scopes, access) is covered
    if access is W:
        assert read_only(scopes) is (not covered)


def test_write_refusals_name_the_step_and_the_way_out() -> None:
    refused = write_refusals(
        [("crm", R), ("crm", W), ("sheets", W), ("ghost", W)],
        {"crm": ["read"], "sheets": ["write:finance"]},
    )
    assert refused == {
        "steps.1.access": "connector 'crm' is granted read only (scopes: read); grant write "
        "in the source system and re-apply the connector, or make the step read"
    }


@pytest.mark.parametrize(
    ("scopes", "accesses", "flagged"),
    [
        (["read"], [], ()),
        (["read"], [R], ()),
        (["read", "write:#ops"], [R], ("write:#ops",)),
        (["read", "write:#ops"], [R, W], ()),
        (["write"], [], ("write",)),
        (["write"], [W], ()),
        (["admin"], [W], ("admin",)),
        (["read", "*"], [R, W], ("*",)),
        (["chat:write"], [R], ("chat:write",)),
        (["chat:write"], [W], ()),
        ([], [R], ()),
    ],
)
def test_over_privileged(scopes: list[str], accesses: list[Access], flagged: tuple[str]) -> None:
    assert over_privileged(scopes, accesses) == flagged


def test_over_privileged_across_a_workspace() -> None:
    connectors = {"crm": ["read"], "sheets": ["write:finance"], "mail": ["write"], "hr": ["*"]}
    steps = [("crm", R), ("sheets", R), ("mail", R), ("mail", W), ("sheets", R)]
    assert over_privileged_in(connectors, steps) == {"sheets": ("write:finance",), "hr": ("*",)}


@pytest.mark.parametrize(
    ("before", "after", "added"),
    [
        (["read"], ["read"], ()),
        (["read"], ["read", "write"], ("write",)),
        (["read"], ["read", "write:#ops"], ("write:#ops",)),
        (["write:#ops"], ["write"], ("write",)),
        (["write:#ops"], ["write:#ops", "write:#sales"], ("write:#sales",)),
        (["write"], ["write:#ops"], ()),
        (["write", "read"], ["read"], ()),
        (["read:#ops"], ["read"], ("read",)),
        (["read"], ["read:#ops"], ()),
        (["read"], ["admin"], ("admin",)),
        (["*"], ["admin", "write", "chat:write"], ()),
        (["chat:write"], ["chat:write", "files:write"], ("files:write",)),
        ([], ["read"], ("read",)),
        (["read", "write"], [], ()),
    ],
)
def test_widened(before: list[str], after: list[str], added: tuple[str]) -> None:
    assert widened(before, after) == added

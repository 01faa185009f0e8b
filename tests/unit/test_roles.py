"""Who may change roles, toggle triggers and touch connectors (docs/governance.md, Roles)."""

from __future__ import annotations

import pytest

from trame_bot.domain.enums import Role
from trame_bot.domain.roles import (
    check_at_least,
    check_connector_change,
    check_role_change,
    check_trigger_toggle,
)
from trame_bot.errors import Forbidden, InvalidInput

MEMBER, ADMIN, OWNER = Role.MEMBER, Role.ADMIN, Role.OWNER
OK = None
NO = Forbidden

# Every change of one user's role (None: not a member), in a workspace with two owners.
ROLE_CHANGES: list[tuple[Role | None, Role | None, object, object, object]] = [
    # current  new     by owner  by admin  by member
    (None, MEMBER, OK, OK, NO),
    (None, ADMIN, OK, NO, NO),
    (None, OWNER, OK, NO, NO),
    (MEMBER, None, OK, OK, NO),
    (MEMBER, ADMIN, OK, NO, NO),
    (MEMBER, OWNER, OK, NO, NO),
    (ADMIN, None, OK, NO, NO),
    (ADMIN, MEMBER, OK, NO, NO),
    (ADMIN, OWNER, OK, NO, NO),
    (OWNER, None, OK, NO, NO),
    (OWNER, MEMBER, OK, NO, NO),
    (OWNER, ADMIN, OK, NO, NO),
]
CASES = [
    pytest.param(actor, current, new, expected, id=f"{actor}:{current}->{new}")
    for current, new, *by_actor in ROLE_CHANGES
    for actor, expected in zip((OWNER, ADMIN, MEMBER), by_actor, strict=True)
]


@pytest.mark.parametrize(("actor", "current", "new", "expected"), CASES)
def test_who_may_change_a_role(
    actor: Role, current: Role | None, new: Role | None, expected: type[Exception] | None
) -> None:
    if expected is None:
        check_role_change(actor, current, new, owners=2)
    else:
        with pytest.raises(expected):
            check_role_change(actor, current, new, owners=2)


@pytest.mark.parametrize("actor", list(Role))
@pytest.mark.parametrize("new", [None, MEMBER, ADMIN])
def test_the_last_owner_keeps_the_role_even_against_themselves(
    actor: Role, new: Role | None
) -> None:
    with pytest.raises(Forbidden):
        check_role_change(actor, OWNER, new, owners=1)


@pytest.mark.parametrize("role", [None, MEMBER, ADMIN, OWNER])
def test_a_change_to_the_same_role_is_refused(role: Role | None) -> None:
    with pytest.raises(InvalidInput):
        check_role_change(OWNER, role, role, owners=2)


@pytest.mark.parametrize(
    ("actor", "enable", "allowed"),
    [
        (MEMBER, False, True),
        (MEMBER, True, False),
        (ADMIN, False, True),
        (ADMIN, True, True),
        (OWNER, False, True),
        (OWNER, True, True),
    ],
)
def test_member_disables_a_trigger_admin_enables_it(
    actor: Role, enable: bool, allowed: bool
) -> None:
    if allowed:
        check_trigger_toggle(actor, enable)
    else:
        with pytest.raises(Forbidden):
            check_trigger_toggle(actor, enable)


@pytest.mark.parametrize(
    ("actor", "regulated", "allowed"),
    [
        (OWNER, True, True),
        (ADMIN, True, True),
        (MEMBER, True, False),
        (None, True, False),
        (OWNER, False, True),
        (ADMIN, False, True),
        (MEMBER, False, True),
    ],
)
def test_regulated_workspaces_keep_connectors_to_owners_and_admins(
    actor: Role | None, regulated: bool, allowed: bool
) -> None:
    if allowed:
        check_connector_change(actor, regulated=regulated)
    else:
        with pytest.raises(Forbidden):
            check_connector_change(actor, regulated=regulated)


@pytest.mark.parametrize(
    ("actor", "needed", "allowed"),
    [
        (None, MEMBER, False),
        (MEMBER, MEMBER, True),
        (MEMBER, ADMIN, False),
        (ADMIN, ADMIN, True),
        (ADMIN, OWNER, False),
        (OWNER, MEMBER, True),
    ],
)
def test_check_at_least(actor: Role | None, needed: Role, allowed: bool) -> None:
    if allowed:
        assert check_at_least(actor, needed, "exporting the audit log") is actor
    else:
        with pytest.raises(Forbidden, match="exporting the audit log"):
            check_at_least(actor, needed, "exporting the audit log")

"""Who may change roles, toggle triggers and touch connectors (docs/governance.md, Roles)."""

from __future__ import annotations

from trame_bot.domain.enums import Role
from trame_bot.errors import Forbidden, InvalidInput


def check_role_change(actor: Role, current: Role | None, new: Role | None, *, owners: int) -> None:
    """`current`/`new` None mean "not a member". `owners` counts the workspace's owners now.

    Owners change any role; admins add and remove plain members only; members change nothing.
    Whatever the actor, the last owner keeps the role.
    """
    if current == new:
        raise InvalidInput(f"the user is already {new or 'not a member'}")
    if actor is Role.MEMBER:
        raise Forbidden("members cannot change roles: ask an admin or an owner")
    if actor is Role.ADMIN and (
        current not in (None, Role.MEMBER) or new not in (None, Role.MEMBER)
    ):
        raise Forbidden(
            "admins add and remove members; only an owner grants or changes admin and owner"
        )
    if current is Role.OWNER and owners <= 1:
        raise Forbidden("the workspace must keep at least one owner: make someone else owner first")


def check_trigger_toggle(actor: Role, enable: bool) -> None:
    """Disabling is a rollback anyone may do; enabling puts automation back, so admin+."""
    if enable and not actor.at_least(Role.ADMIN):
        raise Forbidden("enabling a trigger needs the admin role (any member may disable one)")


def check_connector_change(actor: Role | None, *, regulated: bool) -> None:
    """In a regulated workspace only owners and admins connect or change connectors."""
    if regulated and (actor is None or not actor.at_least(Role.ADMIN)):
        raise Forbidden(
            "this workspace is regulated: an owner or admin must connect or change connectors"
        )


def check_at_least(actor: Role | None, needed: Role, what: str) -> Role:
    if actor is None:
        raise Forbidden(f"{what} is for members of this workspace")
    if not actor.at_least(needed):
        raise Forbidden(f"{what} needs the {needed} role")
    return actor

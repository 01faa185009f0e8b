"""Workspaces, members and API keys through the real service on a real database.

Tables of cases run as loops inside one test where they can share a workspace: each test pays
for a fresh database (a truncate on PostgreSQL), so this keeps the module fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Awaitable
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.clock import FakeClock
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role
from trame_bot.errors import Conflict, Forbidden, InvalidInput, NotFound, TrameError
from trame_bot.services import audit, workspaces
from trame_bot.services.workspaces import WorkspaceSettings
from trame_bot.store.models import ApiKey, AuditEvent, Workspace

E = TypeVar("E", bound=TrameError)

STRANGER = "U0STRANGER"
NEW_USER = "U0NEWUSER"
ACME = WorkspaceSettings(name="Acme", approvals_channel="C0ACMEAPPR", ops_channel="C0ACMEOPS")
GLOBEX = WorkspaceSettings(
    name="Globex", approvals_channel="C0GLOBEXAPPR", ops_channel="C0GLOBEXOPS"
)
BAD_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": "../etc/passwd"}, "timezone"),
    ({"digest_time": "25:00"}, "digest_time"),
    ({"digest_time": "9:00"}, "digest_time"),
    ({"digest_time": "09:60"}, "digest_time"),
    ({"approvals_channel": "#general"}, "approvals_channel"),
    ({"ops_channel": "ops"}, "ops_channel"),
    ({"name": "   "}, "name"),
    ({"approval_ttl": timedelta(0)}, "approval_ttl"),
    ({"reminder_after": timedelta(seconds=-1)}, "reminder_after"),
    ({"webhook_url": "ftp://engine.example"}, "webhook_url"),
]


async def refused(expected: type[E], call: Awaitable[object], case: object) -> E:
    """Await `call` and return the `expected` error it raises; fail naming `case` otherwise."""
    try:
        await call
    except expected as exc:
        return exc
    pytest.fail(f"{case!r} was accepted, expected {expected.__name__}")


async def events(deps: Deps, ws: str = "acme", action: str | None = None) -> list[AuditEvent]:
    async with deps.db.reading() as session:
        query = (
            select(AuditEvent)
            .join(Workspace, Workspace.id == AuditEvent.workspace_id)
            .where(Workspace.key == ws)
            .order_by(AuditEvent.seq)
        )
        if action is not None:
            query = query.where(AuditEvent.action == action)
        return list((await session.execute(query)).scalars())


def data_of(event: AuditEvent) -> Any:
    return json.loads(event.data)


async def two_workspaces(deps: Deps) -> None:
    """acme is created first (the lower id), globex second."""
    await workspaces.create_workspace(deps.ctx, "acme", ACME, f.CLI)
    await workspaces.create_workspace(deps.ctx, "globex", GLOBEX, f.CLI)


async def channels(deps: Deps, ws: str) -> tuple[str, str | None]:
    found = await workspaces.get_workspace(deps.ctx, ws)
    return found.approvals_channel, found.ops_channel


async def roles(deps: Deps, ws: str = "acme") -> dict[str, Role]:
    return {m.slack_user_id: m.role for m in await workspaces.list_members(deps.ctx, ws)}


# ---- creating ------------------------------------------------------------------------------


async def test_create_stores_the_settings_and_audits_them(deps: Deps) -> None:
    settings = replace(
        ACME,
        timezone="Europe/Paris",
        digest_time="08:30",
        approval_ttl=timedelta(hours=2),
        reminder_after=timedelta(minutes=30),
        regulated=True,
    )
    created = await workspaces.create_workspace(deps.ctx, "acme", settings, f.CLI)
    ws = await workspaces.get_workspace(deps.ctx, "acme")
    assert created.webhook_secret is None
    assert (ws.name, ws.approvals_channel, ws.ops_channel) == ("Acme", "C0ACMEAPPR", "C0ACMEOPS")
    assert (ws.timezone, ws.digest_time, ws.regulated) == ("Europe/Paris", "08:30", True)
    assert (ws.approval_ttl_seconds, ws.reminder_after_seconds) == (7200, 1800)
    [event] = await events(deps)
    assert (event.action, event.actor, event.entity_type, event.entity_id) == (
        "workspace.created",
        "cli",
        "workspace",
        "acme",
    )
    after = data_of(event)["after"]
    assert (after["timezone"], after["approval_ttl_seconds"]) == ("Europe/Paris", 7200)
    assert "webhook_secret" not in after
    assert (await audit.verify_chain(deps.ctx, "acme")).ok


async def test_create_uses_the_documented_defaults(deps: Deps) -> None:
    await workspaces.create_workspace(
        deps.ctx, "acme", WorkspaceSettings(name="Acme", approvals_channel="C0ACMEAPPR"), f.CLI
    )
    ws = await workspaces.get_workspace(deps.ctx, "acme")
    assert (ws.timezone, ws.digest_time) == ("UTC", "09:00")
    assert (ws.approval_ttl_seconds, ws.reminder_after_seconds) == (24 * 3600, 4 * 3600)
    assert (ws.regulated, ws.allow_self_approval) == (False, False)
    assert ws.ops_channel is None
    assert ws.alerts_channel == "C0ACMEAPPR"


async def test_create_refuses_bad_input_and_creates_nothing(deps: Deps) -> None:
    for key in ("Acme", "", "-acme", "ac me", "acme!", "x" * 65):
        error = await refused(
            InvalidInput, workspaces.create_workspace(deps.ctx, key, ACME, f.CLI), key
        )
        assert "key" in error.fields
    for partial in (WorkspaceSettings(name="Acme"), WorkspaceSettings(approvals_channel="C0A1")):
        error = await refused(
            InvalidInput, workspaces.create_workspace(deps.ctx, "acme", partial, f.CLI), partial
        )
        assert "name and an approvals channel" in error.message
    for change, field in BAD_SETTINGS:
        call = workspaces.create_workspace(deps.ctx, "acme", replace(ACME, **change), f.CLI)
        error = await refused(InvalidInput, call, change)
        assert field in error.fields, change
    assert await workspaces.list_workspaces(deps.ctx) == []


async def test_a_duplicate_key_is_a_conflict_and_keeps_the_first(deps: Deps) -> None:
    await workspaces.create_workspace(deps.ctx, "acme", ACME, f.CLI)
    other = WorkspaceSettings(name="Other", approvals_channel="C0OTHERAPPR")
    with pytest.raises(Conflict, match="already exists"):
        await workspaces.create_workspace(deps.ctx, "acme", other, f.CLI)
    [ws] = await workspaces.list_workspaces(deps.ctx)
    assert (ws.name, ws.approvals_channel) == ("Acme", "C0ACMEAPPR")
    assert [e.action for e in await events(deps)] == ["workspace.created"]


async def test_create_refuses_a_channel_of_another_workspace(deps: Deps) -> None:
    await workspaces.create_workspace(deps.ctx, "acme", ACME, f.CLI)
    for approvals, ops in [
        ("C0ACMEAPPR", "C0NEWOPS"),
        ("C0ACMEOPS", "C0NEWOPS"),
        ("C0NEWAPPR", "C0ACMEAPPR"),
        ("C0NEWAPPR", "C0ACMEOPS"),
    ]:
        settings = WorkspaceSettings(name="Globex", approvals_channel=approvals, ops_channel=ops)
        call = workspaces.create_workspace(deps.ctx, "globex", settings, f.CLI)
        error = await refused(Conflict, call, (approvals, ops))
        assert "already belongs to another workspace" in error.message
    assert [ws.key for ws in await workspaces.list_workspaces(deps.ctx)] == ["acme"]


async def test_webhook_secret_is_made_once_and_never_audited(deps: Deps) -> None:
    created = await workspaces.create_workspace(
        deps.ctx, "acme", replace(ACME, webhook_url="https://engine.example/hook"), f.CLI
    )
    secret = created.webhook_secret
    assert secret is not None
    assert len(secret) == 64
    assert created.workspace.webhook_secret == secret
    moved = await workspaces.configure_workspace(
        deps.ctx, "acme", WorkspaceSettings(webhook_url="https://engine.example/v2"), f.CLI
    )
    assert moved.webhook_secret is None  # shown once, at creation
    ws = await workspaces.get_workspace(deps.ctx, "acme")
    assert (ws.webhook_url, ws.webhook_secret) == ("https://engine.example/v2", secret)
    created_event, configured = await events(deps)
    assert data_of(configured) == {
        "before": {"webhook_url": "https://engine.example/hook"},
        "after": {"webhook_url": "https://engine.example/v2"},
    }
    for event in (created_event, configured):
        assert secret not in event.data + event.summary
        assert "webhook_secret" not in event.data


async def test_a_webhook_set_later_gets_its_secret_then_keeps_it(deps: Deps) -> None:
    await workspaces.create_workspace(deps.ctx, "acme", ACME, f.CLI)
    first = await workspaces.configure_workspace(
        deps.ctx, "acme", WorkspaceSettings(webhook_url="https://engine.example/hook"), f.CLI
    )
    secret = first.webhook_secret
    assert secret is not None
    again = await workspaces.configure_workspace(
        deps.ctx, "acme", WorkspaceSettings(webhook_url="https://engine.example/hook"), f.CLI
    )
    assert again.webhook_secret is None
    cleared = await workspaces.configure_workspace(
        deps.ctx, "acme", WorkspaceSettings(webhook_url=""), f.CLI
    )
    assert cleared.workspace.webhook_url is None
    back = await workspaces.configure_workspace(
        deps.ctx, "acme", WorkspaceSettings(webhook_url="https://engine.example/new"), f.CLI
    )
    assert (back.webhook_secret, back.workspace.webhook_secret) == (None, secret)
    for event in await events(deps):
        assert secret not in event.data + event.summary


# ---- configuring ---------------------------------------------------------------------------


async def test_configure_audits_only_the_changed_fields(deps: Deps) -> None:
    await f.workspace(deps)
    count = len(await events(deps))
    result = await workspaces.configure_workspace(
        deps.ctx,
        "acme",
        WorkspaceSettings(
            name="Acme",  # unchanged
            timezone="America/New_York",
            digest_time="07:45",
            approval_ttl=timedelta(hours=48),
        ),
        Actor.slack(f.ADMIN),
    )
    assert (result.workspace.timezone, result.workspace.digest_time) == (
        "America/New_York",
        "07:45",
    )
    new = (await events(deps))[count:]
    assert [(e.action, e.actor, e.entity_id) for e in new] == [
        ("workspace.configured", f"slack:{f.ADMIN}", "acme")
    ]
    assert data_of(new[0]) == {
        "before": {"approval_ttl_seconds": 86400, "digest_time": "09:00", "timezone": "UTC"},
        "after": {
            "approval_ttl_seconds": 172800,
            "digest_time": "07:45",
            "timezone": "America/New_York",
        },
    }
    assert new[0].summary == "workspace acme: changed approval_ttl_seconds, digest_time, timezone"
    assert (await audit.verify_chain(deps.ctx, "acme")).ok


async def test_configure_refuses_bad_settings_and_changes_nothing(deps: Deps) -> None:
    await workspaces.create_workspace(deps.ctx, "acme", ACME, f.CLI)
    before = workspaces._snapshot(await workspaces.get_workspace(deps.ctx, "acme"))
    for change, field in BAD_SETTINGS:
        call = workspaces.configure_workspace(deps.ctx, "acme", WorkspaceSettings(**change), f.CLI)
        error = await refused(InvalidInput, call, change)
        assert field in error.fields, change
    after = workspaces._snapshot(await workspaces.get_workspace(deps.ctx, "acme"))
    assert after == before
    assert [e.action for e in await events(deps)] == ["workspace.created"]


async def test_configure_without_a_change_writes_no_event(deps: Deps) -> None:
    await workspaces.create_workspace(deps.ctx, "acme", ACME, f.CLI)
    for same in (
        WorkspaceSettings(),
        WorkspaceSettings(name="Acme", timezone="UTC", digest_time="09:00"),
        WorkspaceSettings(approvals_channel="C0ACMEAPPR", ops_channel="C0ACMEOPS"),
        WorkspaceSettings(approval_ttl=timedelta(hours=24), regulated=False),
    ):
        result = await workspaces.configure_workspace(deps.ctx, "acme", same, f.CLI)
        assert result.webhook_secret is None
    assert [e.action for e in await events(deps)] == ["workspace.created"]


async def test_clearing_the_ops_channel_falls_back_to_approvals(deps: Deps) -> None:
    await workspaces.create_workspace(deps.ctx, "acme", ACME, f.CLI)
    result = await workspaces.configure_workspace(
        deps.ctx, "acme", WorkspaceSettings(ops_channel=""), f.CLI
    )
    assert result.workspace.ops_channel is None
    assert result.workspace.alerts_channel == "C0ACMEAPPR"
    assert data_of((await events(deps))[-1]) == {
        "before": {"ops_channel": "C0ACMEOPS"},
        "after": {"ops_channel": None},
    }


async def test_only_admins_and_owners_of_this_workspace_configure(deps: Deps) -> None:
    await f.workspace(deps, "globex", members=[(f.OWNER, Role.OWNER), ("U0GLOBEXADM", Role.ADMIN)])
    await f.workspace(deps)
    count = len(await events(deps))
    for user in (f.MEMBER, f.OTHER, STRANGER, "U0GLOBEXADM"):
        call = workspaces.configure_workspace(
            deps.ctx, "acme", WorkspaceSettings(regulated=True), Actor.slack(user)
        )
        await refused(Forbidden, call, user)
    await refused(
        Forbidden,
        workspaces.configure_workspace(
            deps.ctx, "acme", WorkspaceSettings(regulated=True), Actor.api("engine")
        ),
        "api key",
    )
    assert (await workspaces.get_workspace(deps.ctx, "acme")).regulated is False
    assert len(await events(deps)) == count
    for user, regulated in ((f.ADMIN, True), (f.OWNER, False)):
        await workspaces.configure_workspace(
            deps.ctx, "acme", WorkspaceSettings(regulated=regulated), Actor.slack(user)
        )
        assert (await workspaces.get_workspace(deps.ctx, "acme")).regulated is regulated
    assert [e.actor for e in await events(deps)][count:] == [f"slack:{f.ADMIN}", f"slack:{f.OWNER}"]
    with pytest.raises(NotFound):
        await workspaces.configure_workspace(deps.ctx, "nope", WorkspaceSettings(name="x"), f.CLI)


async def test_configure_refuses_a_channel_of_another_workspace(deps: Deps) -> None:
    await two_workspaces(deps)
    for ws, field, channel in [
        ("globex", "approvals_channel", "C0ACMEAPPR"),
        ("globex", "approvals_channel", "C0ACMEOPS"),
        ("globex", "ops_channel", "C0ACMEAPPR"),
        ("globex", "ops_channel", "C0ACMEOPS"),
        ("acme", "approvals_channel", "C0GLOBEXAPPR"),
    ]:
        move: dict[str, Any] = {field: channel}
        call = workspaces.configure_workspace(deps.ctx, ws, WorkspaceSettings(**move), f.CLI)
        await refused(Conflict, call, (ws, field, channel))
    assert await channels(deps, "acme") == ("C0ACMEAPPR", "C0ACMEOPS")
    assert await channels(deps, "globex") == ("C0GLOBEXAPPR", "C0GLOBEXOPS")
    assert [e.action for e in await events(deps, "acme")] == ["workspace.created"]
    assert [e.action for e in await events(deps, "globex")] == ["workspace.created"]


async def test_the_older_workspace_cannot_take_a_newer_ones_channel(deps: Deps) -> None:
    """Whatever configure answers, a channel must keep selecting the workspace it belongs to."""
    await two_workspaces(deps)
    for field, channel in [
        ("ops_channel", "C0GLOBEXAPPR"),
        ("approvals_channel", "C0GLOBEXOPS"),
        ("ops_channel", "C0GLOBEXOPS"),
    ]:
        move: dict[str, Any] = {field: channel}
        with contextlib.suppress(Conflict):
            await workspaces.configure_workspace(deps.ctx, "acme", WorkspaceSettings(**move), f.CLI)
        found = await workspaces.workspace_key_for_channel(deps.ctx, channel)
        assert found == "globex", (field, channel)
        assert await channels(deps, "acme") == ("C0ACMEAPPR", "C0ACMEOPS")


async def test_a_workspace_may_swap_its_own_channels(deps: Deps) -> None:
    await two_workspaces(deps)
    await workspaces.configure_workspace(
        deps.ctx,
        "globex",
        WorkspaceSettings(approvals_channel="C0GLOBEXOPS", ops_channel="C0GLOBEXAPPR"),
        f.CLI,
    )
    assert await channels(deps, "globex") == ("C0GLOBEXOPS", "C0GLOBEXAPPR")


# ---- roles ---------------------------------------------------------------------------------


async def test_owners_and_admins_change_roles_as_allowed_and_each_change_is_audited(
    deps: Deps,
) -> None:
    await f.workspace(deps)
    steps: list[tuple[str, str, Role | None, str]] = [
        # actor, user, new role, audit action
        (f.OWNER, NEW_USER, Role.ADMIN, "member.added"),
        (f.OWNER, "U0NEWOWNER", Role.OWNER, "member.added"),
        (f.ADMIN, "U0NEWMEMBER", Role.MEMBER, "member.added"),
        (f.ADMIN, "U0NEWMEMBER", None, "member.removed"),
        (f.OWNER, f.MEMBER, Role.ADMIN, "member.role_changed"),
        (f.OWNER, f.MEMBER, Role.MEMBER, "member.role_changed"),
        (f.ADMIN, f.OTHER, None, "member.removed"),
        (f.OWNER, NEW_USER, None, "member.removed"),
        (f.OWNER, f.ADMIN, Role.OWNER, "member.role_changed"),
    ]
    for actor, user, new, action in steps:
        before = (await roles(deps)).get(user)
        count = len(await events(deps))
        result = await workspaces.set_role(deps.ctx, "acme", user, new, Actor.slack(actor))
        assert (result.role if result else None) is new
        assert (await roles(deps)).get(user) is new
        [event] = (await events(deps))[count:]
        assert (event.action, event.actor, event.entity_type, event.entity_id) == (
            action,
            f"slack:{actor}",
            "member",
            user,
        )
        assert data_of(event) == {"before": before and before.value, "after": new and new.value}
    assert (await audit.verify_chain(deps.ctx, "acme")).ok


async def test_role_changes_outside_the_rules_are_refused(deps: Deps) -> None:
    await f.workspace(deps)
    await workspaces.set_role(deps.ctx, "acme", "U0ADMIN2", Role.ADMIN, f.CLI)
    cases: list[tuple[str, str, Role | None, type[TrameError]]] = [
        (f.ADMIN, NEW_USER, Role.ADMIN, Forbidden),
        (f.ADMIN, NEW_USER, Role.OWNER, Forbidden),
        (f.ADMIN, f.MEMBER, Role.ADMIN, Forbidden),
        (f.ADMIN, f.MEMBER, Role.OWNER, Forbidden),
        (f.ADMIN, f.OWNER, Role.MEMBER, Forbidden),
        (f.ADMIN, f.OWNER, None, Forbidden),
        (f.ADMIN, "U0ADMIN2", Role.MEMBER, Forbidden),
        (f.ADMIN, "U0ADMIN2", None, Forbidden),
        (f.ADMIN, f.ADMIN, Role.OWNER, Forbidden),
        (f.MEMBER, NEW_USER, Role.MEMBER, Forbidden),
        (f.MEMBER, f.OTHER, None, Forbidden),
        (f.MEMBER, f.MEMBER, Role.ADMIN, Forbidden),
        (STRANGER, NEW_USER, Role.MEMBER, Forbidden),
        (STRANGER, STRANGER, Role.OWNER, Forbidden),
        (f.OWNER, f.MEMBER, Role.MEMBER, InvalidInput),
        (f.OWNER, NEW_USER, None, InvalidInput),
        (f.OWNER, "   ", Role.MEMBER, InvalidInput),
    ]
    before_roles, count = await roles(deps), len(await events(deps))
    for actor, user, new, error in cases:
        call = workspaces.set_role(deps.ctx, "acme", user, new, Actor.slack(actor))
        await refused(error, call, (actor, user, new))
    assert await roles(deps) == before_roles
    assert len(await events(deps)) == count


async def test_the_last_owner_is_protected(deps: Deps) -> None:
    await f.workspace(deps)
    for actor in (Actor.slack(f.OWNER), Actor.cli()):
        for new in (Role.ADMIN, Role.MEMBER, None):
            call = workspaces.set_role(deps.ctx, "acme", f.OWNER, new, actor)
            error = await refused(Forbidden, call, (actor.label, new))
            assert "at least one owner" in error.message
    assert (await roles(deps))[f.OWNER] is Role.OWNER


async def test_an_owner_may_step_down_once_another_owner_exists(deps: Deps) -> None:
    await f.workspace(deps)
    await workspaces.set_role(deps.ctx, "acme", f.ADMIN, Role.OWNER, Actor.slack(f.OWNER))
    await workspaces.set_role(deps.ctx, "acme", f.OWNER, Role.MEMBER, Actor.slack(f.OWNER))
    with pytest.raises(Forbidden, match="at least one owner"):
        await workspaces.set_role(deps.ctx, "acme", f.ADMIN, None, Actor.slack(f.ADMIN))
    assert [u for u, r in (await roles(deps)).items() if r is Role.OWNER] == [f.ADMIN]


async def test_two_owners_stepping_down_at_once_leave_one(deps: Deps) -> None:
    await f.workspace(deps)
    await workspaces.set_role(deps.ctx, "acme", f.ADMIN, Role.OWNER, f.CLI)

    async def step_down(user: str) -> bool:
        try:
            await workspaces.set_role(deps.ctx, "acme", user, Role.MEMBER, Actor.slack(user))
        except Forbidden:
            return False
        return True

    results = await asyncio.gather(step_down(f.OWNER), step_down(f.ADMIN))
    assert sorted(results) == [False, True]
    assert list((await roles(deps)).values()).count(Role.OWNER) == 1


async def test_roles_are_per_workspace(deps: Deps) -> None:
    await f.workspace(deps)
    await f.workspace(deps, "globex", members=[("U0GLOBEXOWN", Role.OWNER)])
    with pytest.raises(Forbidden):
        await workspaces.set_role(deps.ctx, "globex", NEW_USER, Role.MEMBER, Actor.slack(f.OWNER))
    assert await roles(deps, "globex") == {"U0GLOBEXOWN": Role.OWNER}


# ---- API keys ------------------------------------------------------------------------------


async def test_an_api_key_is_stored_only_as_its_hash(deps: Deps) -> None:
    await f.workspace(deps)
    api_key, token = await workspaces.create_api_key(
        deps.ctx, "acme", "engine", Actor.slack(f.ADMIN)
    )
    assert api_key.name == "engine"
    assert token.startswith(workspaces.API_KEY_PREFIX)
    assert len(token) > 40
    async with deps.db.reading() as session:
        [row] = (await session.execute(select(ApiKey))).scalars().all()
    stored = [str(getattr(row, column.key)) for column in ApiKey.__table__.columns]
    assert row.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(row.prefix)
    assert len(row.prefix) < len(token) // 3
    assert all(token not in value for value in stored)
    [event] = await events(deps, action="api_key.created")
    assert (event.actor, event.entity_id) == (f"slack:{f.ADMIN}", "engine")
    assert token not in event.data + event.summary
    assert row.key_hash not in event.data + event.summary


async def test_authenticate_finds_the_workspace_and_key(deps: Deps) -> None:
    await f.workspace(deps)
    await f.workspace(deps, "globex")
    _, acme_token = await workspaces.create_api_key(deps.ctx, "acme", "engine", f.CLI)
    _, globex_token = await workspaces.create_api_key(deps.ctx, "globex", "engine", f.CLI)
    found = await workspaces.authenticate(deps.ctx, acme_token)
    assert found is not None
    assert (found.workspace, found.name) == ("acme", "engine")
    other = await workspaces.authenticate(deps.ctx, globex_token)
    assert other is not None
    assert other.workspace == "globex"
    for unknown in ("", "trame_nope", acme_token + "x", acme_token[:-1], acme_token.upper()):
        assert await workspaces.authenticate(deps.ctx, unknown) is None


async def test_a_revoked_key_no_longer_authenticates_and_its_name_is_free(
    deps: Deps, clock: FakeClock
) -> None:
    await f.workspace(deps)
    _, old = await workspaces.create_api_key(deps.ctx, "acme", "engine", f.CLI)
    with pytest.raises(Conflict, match="revoke it first"):
        await workspaces.create_api_key(deps.ctx, "acme", "engine", Actor.slack(f.OWNER))
    clock.advance(timedelta(minutes=1))
    await workspaces.revoke_api_key(deps.ctx, "acme", "engine", Actor.slack(f.ADMIN))
    assert await workspaces.authenticate(deps.ctx, old) is None
    with pytest.raises(NotFound):
        await workspaces.revoke_api_key(deps.ctx, "acme", "engine", f.CLI)
    clock.advance(timedelta(minutes=1))
    _, new = await workspaces.create_api_key(deps.ctx, "acme", "engine", f.CLI)
    assert await workspaces.authenticate(deps.ctx, new) is not None
    assert await workspaces.authenticate(deps.ctx, old) is None
    keys = await workspaces.list_api_keys(deps.ctx, "acme")
    assert [(k.name, k.revoked_at) for k in keys] == [
        ("engine", clock.now() - timedelta(minutes=1)),
        ("engine", None),
    ]
    assert [(e.action, e.actor) for e in await events(deps) if e.entity_type == "api_key"] == [
        ("api_key.created", "cli"),
        ("api_key.revoked", f"slack:{f.ADMIN}"),
        ("api_key.created", "cli"),
    ]


async def test_revoking_an_unknown_or_foreign_key_is_not_found(deps: Deps) -> None:
    await f.workspace(deps)
    await f.workspace(deps, "globex")
    _, token = await workspaces.create_api_key(deps.ctx, "globex", "engine", f.CLI)
    for name in ("engine", "nope"):
        with pytest.raises(NotFound):
            await workspaces.revoke_api_key(deps.ctx, "acme", name, f.CLI)
    assert await workspaces.authenticate(deps.ctx, token) is not None
    assert [e for e in await events(deps) if e.entity_type == "api_key"] == []


async def test_members_cannot_create_or_revoke_keys(deps: Deps) -> None:
    await f.workspace(deps)
    _, token = await workspaces.create_api_key(deps.ctx, "acme", "engine", f.CLI)
    for actor in (Actor.slack(f.MEMBER), Actor.slack(STRANGER), Actor.api("engine")):
        await refused(Forbidden, workspaces.create_api_key(deps.ctx, "acme", "mine", actor), actor)
        await refused(
            Forbidden, workspaces.revoke_api_key(deps.ctx, "acme", "engine", actor), actor
        )
    for name in ("Engine", "", "my key", "x" * 65):
        await refused(InvalidInput, workspaces.create_api_key(deps.ctx, "acme", name, f.CLI), name)
    assert [k.name for k in await workspaces.list_api_keys(deps.ctx, "acme")] == ["engine"]
    assert await workspaces.authenticate(deps.ctx, token) is not None

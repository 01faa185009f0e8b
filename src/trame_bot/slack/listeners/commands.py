"""`/trame`: the channel selects the workspace; each subcommand calls one service."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Role, Status
from trame_bot.domain.values import parse_moment
from trame_bot.errors import ChannelNotBound, InvalidInput
from trame_bot.reports.render import export_file, rendered
from trame_bot.services import (
    audit,
    digests,
    naming,
    overview,
    pilot,
    rollback,
    workflow_status,
    workflows,
    workspaces,
)
from trame_bot.services.context import Context
from trame_bot.services.reports import ReportFormat, incident_report
from trame_bot.slack.blocks import replies
from trame_bot.slack.blocks.modals import promote_live_modal
from trame_bot.slack.commands import Command, parse
from trame_bot.slack.errors import friendly
from trame_bot.slack.listeners.incidents import rollback_text
from trame_bot.slack.team_scope import team_scope
from trame_bot.slack.text import code, escape, user
from trame_bot.store.audit import AuditFilter

log = logging.getLogger(__name__)
ACK_WITHIN = 2.0
"""Seconds a command may take before it is acknowledged and answered later: Slack waits 3 s,
and the request spent some of them reaching us."""
WORKING_ON_IT = "⏳ Working on it: the answer follows in a moment."
ROLE_WORDS = {"owner": Role.OWNER, "admin": Role.ADMIN, "member": Role.MEMBER, "remove": None}


@dataclass
class CommandRequest:
    ctx: Context
    client: AsyncWebClient
    ack: AsyncAck
    team: str | None
    """The request's Slack team in distributed mode (`team_scope`), None in one-workspace."""
    user: str
    channel: str
    trigger_id: str | None
    command: Command
    acked: bool = False
    _workspace: str | None = None

    async def ack_now(self, text: str | None = None) -> None:
        """Answer Slack before slow work; the final answer then goes through `respond`.
        Once only: a handler's own ack after `in_time` acked for it is skipped."""
        if self.acked:
            return
        self.acked = True
        await (self.ack(text=text) if text else self.ack())

    async def in_time(self, work: Awaitable[str | None]) -> str | None:
        """`work`'s answer, acknowledged within Slack's 3 s whatever it takes: a command still
        running after `ACK_WITHIN` (a very large workspace, the database busy) is acked with a
        note that the answer follows, and its answer goes through `respond`."""
        # A timer, not a task to wait on with a timeout: the work runs in this task, and a
        # command that answers in time (nearly all) pays 5 µs for the watch instead of 17.
        late: list[asyncio.Future[None]] = []

        def ack_late() -> None:
            if not self.acked:
                late.append(asyncio.ensure_future(self.ack_now(WORKING_ON_IT)))

        timer = asyncio.get_running_loop().call_later(ACK_WITHIN, ack_late)
        try:
            return await work
        finally:
            timer.cancel()
            if late:  # the note reaches Slack before the answer goes through `respond`
                await late[0]

    @property
    def actor(self) -> Actor:
        return Actor.slack(self.user)

    async def workspace(self) -> str:
        """The key of the channel's workspace, read once per command. Commands that read
        everything they need in one statement (`status <workflow>`) never call this."""
        if self._workspace is None:
            found = await workspaces.workspace_key_for_channel(self.ctx, self.channel, self.team)
            if found is None:
                raise ChannelNotBound(self.channel)
            self._workspace = found
        return self._workspace

    def named(self, usage: str) -> naming.Named:
        """The workflow the leading words name, for a service to read with what it changes."""
        if not self.command.words:
            raise InvalidInput(f"name a workflow: `{usage}`")
        return naming.Named(self.channel, self.team, self.command.words)

    async def workflow_and_rest(self, usage: str) -> tuple[str, tuple[str, ...]]:
        """The workflow the leading words name (key or name, any case) and the words after it."""
        self._workspace, key, rest = await naming.named_in_channel(
            self.ctx, self.named(usage), self.user
        )
        return key, rest


Handler = Callable[[CommandRequest], Awaitable[str | None]]


async def status(r: CommandRequest) -> str:
    if not r.command.words:
        return replies.overview_text(await overview.summary(r.ctx, await r.workspace(), r.actor))
    # The most frequent command: channel, role, workflow and glance in one read transaction.
    line, pending = await overview.workflow_glance(
        r.ctx, r.channel, r.team, r.user, r.command.words
    )
    return replies.workflow_status_text(line, pending)


async def list_workflows(r: CommandRequest) -> str:
    return replies.workflows_text(await overview.workflow_list(r.ctx, await r.workspace(), r.actor))


async def approvals(r: CommandRequest) -> str:
    return replies.approvals_text(await overview.waiting_for(r.ctx, r.user, await r.workspace()))


async def connectors(r: CommandRequest) -> str:
    return replies.connectors_text(
        await overview.connector_list(r.ctx, await r.workspace(), r.actor)
    )


async def pause(r: CommandRequest) -> str:
    # Pulling the brake: channel, workflow (locked), role and the change in one transaction.
    done = await workflow_status.pause_named(
        r.ctx, r.named("/trame pause <workflow> <reason>"), r.actor
    )
    return f"⏸️ *{escape(done.name)}* is paused; its pending runs were cancelled. `/trame resume {done.key}` (admin) brings it back."


async def resume(r: CommandRequest) -> str:
    done = await workflow_status.resume_named(r.ctx, r.named("/trame resume <workflow>"), r.actor)
    return f"▶️ *{escape(done.name)}* is {done.status.value} again."


async def roll_back(r: CommandRequest) -> str:
    key, rest = await r.workflow_and_rest("/trame rollback <workflow> [why]")
    done = await rollback.roll_back(r.ctx, await r.workspace(), key, r.actor, why=" ".join(rest))
    return rollback_text(done)


async def promote(r: CommandRequest) -> str | None:
    key, rest = await r.workflow_and_rest("/trame promote <workflow> pilot|live")
    target = rest[0].lower() if rest else ""
    if target == "live":
        if not r.trigger_id:
            raise InvalidInput(
                "Slack sent no trigger id, so the sign-off form cannot open; try again"
            )
        form = await pilot.prepare_go_live(r.ctx, await r.workspace(), key, r.actor)
        # The trigger id lives 3 s: ack first, open the form right after.
        await r.ack_now()
        await r.client.views_open(
            trigger_id=r.trigger_id,
            view=promote_live_modal(
                await r.workspace(),
                form.workflow.key,
                form.workflow.name,
                r.channel,
                [t.key for t in form.workflow.triggers],
                form.record,
                form.warnings,
            ),
        )
        return None
    if target != "pilot":
        raise InvalidInput(f"promote to `pilot` or `live`: `/trame promote {key} pilot`")
    done = await workflow_status.change_status(
        r.ctx, await r.workspace(), key, Status.PILOT, r.actor
    )
    return f"*{escape(done.name)}* is now in pilot."


async def demote(r: CommandRequest) -> str:
    key, rest = await r.workflow_and_rest("/trame demote <workflow> draft|pilot")
    target = rest[0].lower() if rest else ""
    if target not in ("draft", "pilot"):
        raise InvalidInput(f"demote to `draft` or `pilot`: `/trame demote {key} pilot`")
    done = await workflow_status.change_status(
        r.ctx, await r.workspace(), key, Status(target), r.actor
    )
    return f"*{escape(done.name)}* is now {done.status.value}."


async def trigger(r: CommandRequest) -> str:
    key, rest = await r.workflow_and_rest("/trame trigger <workflow> <trigger> on|off")
    if len(rest) != 2 or rest[1].lower() not in ("on", "off"):
        raise InvalidInput(f"say which trigger and on or off: `/trame trigger {key} <trigger> off`")
    done = await workflows.set_trigger(
        r.ctx, await r.workspace(), key, rest[0], rest[1].lower() == "on", r.actor
    )
    return f"Trigger {code(done.key)} of {code(key)} is {'on' if done.enabled else 'off'}."


def _audit_filter(words: tuple[str, ...], now: Any) -> AuditFilter:
    entity: tuple[str | None, str | None] = (None, None)
    times: list[Any] = []
    for word in words:
        if ":" in word and not word[:1].isdigit():
            entity = audit.parse_entity(word)
        else:
            times.append(parse_moment(word, now))
    if len(times) > 2:
        raise InvalidInput("give at most a since and an until time")
    return AuditFilter(entity[0], entity[1], *[*times, None, None][:2])


async def audit_list(r: CommandRequest) -> str:
    where = _audit_filter(r.command.words, r.ctx.clock.now())
    return replies.audit_text(
        await audit.list_events(r.ctx, await r.workspace(), where, r.actor, limit=20)
    )


async def audit_export(r: CommandRequest) -> str:
    """Streams the export to a temporary file, then uploads it to the channel."""
    where = _audit_filter(r.command.words, r.ctx.clock.now())
    workspace = await r.workspace()
    chunks = await audit.export_events(r.ctx, workspace, where, audit.ExportFormat.CSV, r.actor)
    await r.ack_now("⏳ Exporting the audit log…")
    handle, path = tempfile.mkstemp(prefix="trame-audit-", suffix=".csv")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            async for chunk in chunks:
                out.write(chunk)
        name = f"audit-{workspace}-{r.ctx.clock.now():%Y%m%d-%H%M}.csv"
        await r.client.files_upload_v2(
            channel=r.channel,
            file=path,
            filename=name,
            title=f"Audit log of {workspace}",
            initial_comment=f"Audit export requested by {user(r.user)}",
        )
    finally:
        os.unlink(path)
    return "📎 The audit export is in the channel."


async def report(r: CommandRequest) -> str:
    """Acks at once (the PDF takes a moment), then posts the report and its export as files."""
    where = _audit_filter(r.command.words, r.ctx.clock.now())
    if where.entity_type is None:
        raise InvalidInput(
            "say what the report is about: `/trame report workflow:<key> [since] [until]` "
            "or `connector:<key>`"
        )
    await r.ack_now("⏳ Preparing the incident report…")
    bundle = await incident_report(
        r.ctx,
        await r.workspace(),
        f"{where.entity_type}:{where.entity_id}",
        where.since,
        where.until,
        ReportFormat.PDF,
        r.actor,
    )
    document = await rendered(bundle, ReportFormat.PDF)
    export = export_file(bundle)
    await r.client.files_upload_v2(
        channel=r.channel,
        file_uploads=[
            {"file": document.content, "filename": document.name, "title": document.name},
            {"file": export.content, "filename": export.name, "title": export.name},
        ],
        initial_comment=f"Incident report on {code(bundle.report.entity)} requested by "
        f"{user(r.user)}; check the export with `trame-bot audit verify --file {export.name}`",
    )
    return "📎 The incident report is in the channel."


async def role(r: CommandRequest) -> str:
    words = r.command.words
    if len(words) != 2 or words[1].lower() not in ROLE_WORDS:
        raise InvalidInput("usage: `/trame role @user owner|admin|member|remove`")
    new = ROLE_WORDS[words[1].lower()]
    await workspaces.set_role(r.ctx, await r.workspace(), words[0], new, r.actor)
    return f"{user(words[0])} is now {new.value if new else 'removed from this workspace'}."


async def digest(r: CommandRequest) -> str:
    await digests.send_digest_now(r.ctx, await r.workspace(), r.actor)
    return "📋 The digest is on its way to the ops channel."


HANDLERS: dict[str, Handler] = {
    "status": status,
    "workflows": list_workflows,
    "approvals": approvals,
    "connectors": connectors,
    "pause": pause,
    "resume": resume,
    "rollback": roll_back,
    "promote": promote,
    "demote": demote,
    "trigger": trigger,
    "audit": audit_list,
    "audit export": audit_export,
    "report": report,
    "role": role,
    "digest": digest,
}


def register(app: AsyncApp, ctx: Context) -> None:
    @app.command("/trame")
    async def trame(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        request: CommandRequest | None = None
        try:
            command = parse(str(body.get("text", "")))
            if command.name == "help":
                note = f"I don't know `{escape(command.words[0])}`." if command.words else None
                await ack(text=replies.help_text(note))
                return
            handler = HANDLERS[command.name]
            request = CommandRequest(
                ctx,
                client,
                ack,
                team_scope(ctx, context),
                str(body["user_id"]),
                str(body["channel_id"]),
                body.get("trigger_id"),
                command,
            )
            answer = await request.in_time(handler(request))
            if not request.acked:
                await (ack(text=answer) if answer else ack())
            elif answer:
                await respond(text=answer, response_type="ephemeral", replace_original=False)
        except Exception as exc:
            message = friendly(exc)
            if request is not None and request.acked:
                await respond(text=message, response_type="ephemeral", replace_original=False)
            else:
                await ack(text=message)

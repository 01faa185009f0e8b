"""The processes a benchmark talks to, each started as `python -m bench.servers KIND`.

Every kind serves on a free loopback port, prints one JSON line `{"port": N}` when it accepts
connections, and stops on SIGTERM. Configuration comes from the environment, as in production
(`DATABASE_URL`, `SLACK_BOT_TOKEN`, `SLACK_SIGNING_SECRET`, `SLACK_API_URL`).

- `trame`: the real server, `build_web_app(build())` (Slack, API, outbox worker), no scheduler.
- `trame-web` and `outbox`: the same server split as `serve --no-outbox` and `trame-bot outbox`.
- `bare`: the baseline Bolt app, configured and served like trame-bot's, whose listeners only ack.
- `insert`: the baseline API, a minimal aiohttp handler doing one INSERT per request.
- `reference`: the issue's nearest design, the bare app whose listeners do what a command or
  a click needs of the database and of Slack, and nothing else: `status` one SQLAlchemy Core
  read joining channel → workspace → member → workflow; `pause`/`resume` that read (the
  workflow locked) and the contract's checks (a pause's reason, an admin to resume), then in
  the same transaction the status written where the gate reads it (trame-bot's `workflows`
  row), a pause's pending runs cancelled, each change chained, acked with the result, then
  the change announced in the approvals channel (one `chat.postMessage`); a button click is
  acked, then decided in one write transaction (the run's state row moved from pending, an
  event chained), then what the contract sends for it: a reply in the card's thread, the
  requester's DM (`conversations.open` once per person) and the message updated once
  (`chat.update`, one section). In distributed mode (the environment's OAuth settings) each
  request's team is authorized from its installation (`_installed`).
- `api-reference`: the nearest design for a run request (row 4c), an aiohttp handler doing
  the contract's work with the fewest statements, in one write transaction: one Core read
  joining the bearer key's hash → workspace → workflow (held against a pause until the run
  is written) → the request's trigger and the connectors its steps name (the gate's
  inputs), trame-bot's pure gate, the run row inserted in trame-bot's own `runs` table (the
  plan, its fingerprint as the workflow stores it, the details), an event chained.
- `fake`: the sandbox's fake Slack Web API, with counters the benchmarks read.
- `probe`: health-check URLs answering in 50 ms; `/fail/…` answers 500, `/hang/…` never does.

The nearest designs chain each event as any tamper-evident log must (`_chained`): its hash
covers the previous one, taken from the workspace's head under the write. None of them writes
an outbox row: what they send Slack, they send once, after the commit; only 4c reads the
gate's inputs beyond the workflow's status.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from aiohttp import web
from sqlalchemy import (
    JSON,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    column,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from trame_bot.bootstrap import build, build_slack, build_web_app
from trame_bot.config import Distributed, load_settings
from trame_bot.domain import gate
from trame_bot.domain.audit_chain import GENESIS_HASH
from trame_bot.domain.enums import Role, RunState, Source, Status
from trame_bot.domain.plan import steps_from_dicts
from trame_bot.heap import freeze_startup_heap
from trame_bot.logs import configure_logging
from trame_bot.sandbox.fake_slack import BOT_USER_ID, FakeSlack, Message
from trame_bot.services.workspaces import hash_api_key
from trame_bot.store.database import Database
from trame_bot.store.functions import array_elements
from trame_bot.store.models import (
    ApiKey,
    Connector,
    Member,
    Run,
    SlackInstallation,
    Trigger,
    Workflow,
    Workspace,
)
from trame_bot.store.partial import state_is
from trame_bot.vault import Vault

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.authorization import AuthorizeResult

PROBE_DELAY = 0.050
INSERT_TABLE = "bench_inserts"
NEAREST_DESIGN = "nearest design"
"""Who decides the runs row 4c writes (`decided_by`), so they are told from trame-bot's."""


class _ReferenceTables(NamedTuple):
    runs: str
    heads: str
    events: str


REFERENCE_TABLES = _ReferenceTables("bench_run_states", "bench_chain_heads", "bench_chained_events")
ANYTHING = re.compile(".*")


# ---- the servers under test and their baselines --------------------------------------------


def trame_app(*, outbox: bool = True) -> web.Application:
    settings = load_settings()
    configure_logging(settings)
    return build_web_app(build(settings), outbox=outbox)


def outbox_app() -> web.Application:
    """`trame-bot outbox` as a bench child: the outbox worker alone, polling as that command
    does; it serves nothing (the port only says it is up)."""
    from trame_bot.delivery import ALONE_POLL, delivering

    settings = load_settings()
    configure_logging(settings)
    deps = build(settings)
    slack = build_slack(deps)
    app = web.Application()
    app.cleanup_ctx.append(lambda _app: slack.connections.opened())
    app.cleanup_ctx.append(lambda _app: delivering(deps.ctx, slack.senders, poll=ALONE_POLL))
    return app


def bare_bolt_app() -> web.Application:
    """Bolt with trame-bot's settings (same client, same ack-then-process mode) and the same
    aiohttp adapter (`trame_bot.http.app.slack_events`), minus everything trame-bot does."""
    from slack_bolt.async_app import AsyncAck

    bolt, app = _bolt_app("bare")

    @bolt.command(ANYTHING)
    async def command(ack: AsyncAck) -> None:
        await ack()

    @bolt.action(ANYTHING)
    async def action(ack: AsyncAck) -> None:
        await ack()

    return app


def _bolt_app(name: str, db: Database | None = None) -> tuple[AsyncApp, web.Application]:
    """A Bolt app configured and served as trame-bot's, with no listener yet. In distributed
    mode (the environment's OAuth settings) each request's team is authorized from `db`
    (`_installed`)."""
    from slack_bolt.async_app import AsyncApp

    from trame_bot.http.app import BOLT, MAX_BODY, slack_events
    from trame_bot.slack.client import build_client

    settings = load_settings()
    configure_logging(settings)
    mode = settings.slack_mode()
    options: dict[str, Any]
    if isinstance(mode, Distributed):
        assert db is not None, "distributed mode reads each request's installation"
        secret = mode.signing_secret
        options = {
            "client": build_client("", settings.slack_api_url),
            "authorize": _installed(db, Vault(settings.encryption_keys)),
        }
    else:
        token, secret = settings.require_slack()
        options = {"client": build_client(token, settings.slack_api_url)}
    bolt = AsyncApp(
        name=name,
        signing_secret=secret,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        **options,
    )
    app = web.Application(client_max_size=MAX_BODY)
    app[BOLT] = bolt
    app.router.add_post("/slack/events", slack_events)
    return bolt, app


_INSTALLATION = (
    select(SlackInstallation.bot_token, SlackInstallation.bot_user_id, SlackInstallation.bot_id)
    .where(SlackInstallation.team_id == bindparam("team"))
    .where(SlackInstallation.disconnected_at.is_(None))
)


def _installed(db: Database, vault: Vault) -> Callable[..., Awaitable[AuthorizeResult | None]]:
    """The nearest design's authorize in distributed mode, what any app installed in many
    teams does per request: the team's installation in one Core read, its token opened.
    Nothing is cached, as in trame-bot (a disconnected team is refused at once)."""
    from slack_bolt.authorization import AuthorizeResult

    async def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult | None:
        async with db.engine.connect() as conn:
            row = (await conn.execute(_INSTALLATION, {"team": team_id})).one_or_none()
        if row is None:
            return None
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            bot_token=vault.open(row.bot_token),
            bot_user_id=row.bot_user_id,
            bot_id=row.bot_id,
        )

    return authorize


_ws, _wf, _member = Workspace.__table__, Workflow.__table__, Member.__table__
_SCOPE = (
    select(_ws.c.id.label("workspace_id"), _wf.c.id, _wf.c.name, _wf.c.status, _member.c.role)
    .select_from(
        _ws.join(_wf, _wf.c.workspace_id == _ws.c.id).join(
            _member,
            and_(_member.c.workspace_id == _ws.c.id, _member.c.slack_user_id == bindparam("user")),
        )
    )
    .where(
        or_(
            _ws.c.approvals_channel == bindparam("channel"),
            _ws.c.ops_channel == bindparam("channel"),
        ),
        _wf.c.key == bindparam("key"),
    )
)


_LOCKED_SCOPE = _SCOPE.add_columns(
    _wf.c.key, _wf.c.status_before_pause, _ws.c.approvals_channel
).with_for_update(of=_wf)
_SET_STATUS = (
    update(Workflow)
    .where(Workflow.id == bindparam("wf"))
    .values(
        status=bindparam("status"),
        status_before_pause=bindparam("before"),
        updated_at=bindparam("at"),
    )
)
_CANCEL_PENDING = (
    update(Run)
    .where(Run.workflow_id == bindparam("wf"), state_is(Run.state, RunState.PENDING))
    .values(state=RunState.CANCELLED, decided_at=bindparam("at"), decided_by=bindparam("by"))
    .returning(Run.id)
)


def _status_change_refused(verb: str, row: Any, reason: str) -> str | None:
    """What the contract (docs/governance.md, "Workflow statuses") refuses: a workflow not there,
    a pause without a reason, a resume of a workflow not paused or by less than an admin."""
    if row is None:
        return "unknown"
    if verb == "pause":
        return "say why" if not reason else None
    if row.status != Status.PAUSED:
        return "not paused"
    return None if row.role in (Role.ADMIN, Role.OWNER) else "needs the admin role"


async def _change_status(conn: AsyncConnection, verb: str, row: Any, user: str) -> None:
    """The status written where the gate reads it (the real `workflows` row, locked by the
    read), a pause's pending runs cancelled in the same transaction, each change chained
    (the runs locked before the head, as trame-bot's lock order has it)."""
    now, paused = datetime.now(UTC), verb == "pause"
    target = Status.PAUSED if paused else (row.status_before_pause or Status.DRAFT)
    before = row.status if paused else None
    await conn.execute(_SET_STATUS, {"wf": row.id, "status": target, "before": before, "at": now})
    cancelled: list[str] = []
    if paused:
        found = await conn.execute(_CANCEL_PENDING, {"wf": row.id, "at": now, "by": user})
        cancelled = list(found.scalars())
    await _chained(conn, row.workspace_id, row.id, f"{row.key} {verb}d by {user}")
    for run_id in cancelled:
        await _chained(conn, row.workspace_id, row.id, f"run {run_id} cancelled")


def reference_app() -> web.Application:
    """The nearest design the issue names (see the module's docstring): Bolt as the bare app,
    and per command only its database work, in SQLAlchemy Core on the same engine settings
    as trame-bot's (aiosqlite's thread on SQLite, asyncpg on PostgreSQL; BEGIN IMMEDIATE
    for SQLite's writes)."""
    from slack_bolt.async_app import AsyncAck
    from slack_sdk.web.async_client import AsyncWebClient

    db = Database(load_settings().database_url)
    bolt, app = _bolt_app("reference", db)
    runs_table = REFERENCE_TABLES.runs

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await _reference_tables(db)
        yield
        await db.dispose()

    @bolt.command(ANYTHING)
    async def command(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        words: list[str] = str(command.get("text") or "").split()
        verb, key, *reason = [*words, "", ""]
        user = command["user_id"]
        where = {"channel": command["channel_id"], "user": user, "key": key}
        if verb not in ("pause", "resume"):
            async with db.engine.connect() as conn:
                row = (await conn.execute(_SCOPE, where)).one_or_none()
            await ack(f"{row.name}: {row.status} (you are {row.role})" if row else "unknown")
            return
        said = " ".join(reason).strip()
        async with db.engine.begin() as conn:
            row = (await conn.execute(_LOCKED_SCOPE, where)).one_or_none()
            refused = _status_change_refused(verb, row, said)
            if row is not None and refused is None:
                await _change_status(conn, verb, row, user)
        await ack(refused or f"{key}: {verb}d")
        if row is not None and refused is None:
            # Announced in the channel, as trame-bot's status changes are (docs/slack-app.md),
            # posted once, straight after the ack: no outbox, so a notice Slack refuses is
            # lost, which trame-bot's outbox does not allow. The least any design pays.
            why = f": {said}" if said else ""
            await client.chat_postMessage(
                channel=row.approvals_channel, text=f"{row.name} {verb}d by <@{user}>{why}"
            )

    decide = text(
        f"UPDATE {runs_table} SET state = 'approved' WHERE run_id = :id AND state = 'pending'"
        " RETURNING workspace_id, requested_by"
    )
    dm_channels: dict[str, str] = {}

    @bolt.action(ANYTHING)
    async def action(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        run_id, user = str(body["actions"][0].get("value")), body["user"]["id"]
        async with db.engine.begin() as conn:
            decided = (await conn.execute(decide, {"id": run_id})).one_or_none()
            if decided is not None:
                await _chained(conn, decided.workspace_id, 0, f"run {run_id} approved by {user}")
        if decided is None:
            return
        # What the contract sends for a decision (docs/slack-app.md): a reply in the card's
        # thread, the requester's DM (its channel opened once per person), and the card updated
        # in place, last, as row 3a's clock stops at the last update.
        channel, ts = body["channel"]["id"], body["container"]["message_ts"]
        said = f"Approved by <@{user}>"
        await client.chat_postMessage(channel=channel, thread_ts=ts, text=f"<@{user}> approved")
        requester = decided.requested_by
        if requester:
            if requester not in dm_channels:
                opened = await client.conversations_open(users=requester)
                dm_channels[requester] = str(opened["channel"]["id"])
            await client.chat_postMessage(channel=dm_channels[requester], text=said)
        await client.chat_update(
            channel=channel,
            ts=ts,
            text=said,
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": said}}],
        )

    app.cleanup_ctx.append(lifecycle)
    return app


async def _reference_tables(db: Database) -> None:
    """The nearest designs' own tables: a state per run, copied from trame-bot's rows, and an
    event log chained per workspace from its head."""
    t = REFERENCE_TABLES
    async with db.engine.begin() as conn:
        for ddl in (
            f"{t.runs} (run_id VARCHAR(32) PRIMARY KEY, workspace_id INTEGER NOT NULL,"
            " state VARCHAR(16) NOT NULL, requested_by VARCHAR(100))",
            f"{t.heads} (workspace_id INTEGER PRIMARY KEY, seq BIGINT NOT NULL,"
            " hash VARCHAR(64) NOT NULL)",
            f"{t.events} (workspace_id INTEGER NOT NULL, seq BIGINT NOT NULL,"
            " workflow_id INTEGER NOT NULL, what TEXT NOT NULL, at VARCHAR(40) NOT NULL,"
            " prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL,"
            " PRIMARY KEY (workspace_id, seq))",
        ):
            await conn.execute(text(f"CREATE TABLE IF NOT EXISTS {ddl}"))
        for copy in (
            f"{t.runs} (run_id, workspace_id, state, requested_by)"
            " SELECT id, workspace_id, 'pending', requested_by FROM runs"
            f" WHERE id NOT IN (SELECT run_id FROM {t.runs})",
            f"{t.heads} (workspace_id, seq, hash) SELECT id, 0, '{GENESIS_HASH}' FROM workspaces"
            f" WHERE id NOT IN (SELECT workspace_id FROM {t.heads})",
        ):
            await conn.execute(text(f"INSERT INTO {copy}"))


_CHAIN_IN_DATABASE = text(
    f"""
    WITH head AS (
        SELECT seq + 1 AS seq, hash AS prev_hash FROM {REFERENCE_TABLES.heads}
        WHERE workspace_id = :ws FOR UPDATE
    ), event AS (
        INSERT INTO {REFERENCE_TABLES.events}
            (workspace_id, seq, workflow_id, what, at, prev_hash, hash)
        SELECT :ws, seq, :wf, :what, :at, prev_hash,
               encode(sha256(convert_to(prev_hash || :what || :at, 'UTF8')), 'hex')
        FROM head
        RETURNING seq, hash
    )
    UPDATE {REFERENCE_TABLES.heads} SET seq = event.seq, hash = event.hash
    FROM event WHERE {REFERENCE_TABLES.heads}.workspace_id = :ws
    """
).bindparams(
    bindparam("ws", type_=Integer),
    bindparam("wf", type_=Integer),
    bindparam("what", type_=Text),
    bindparam("at", type_=String),
)
_READ_HEAD = text(f"SELECT seq, hash FROM {REFERENCE_TABLES.heads} WHERE workspace_id = :ws")
_INSERT_EVENT = text(
    f"INSERT INTO {REFERENCE_TABLES.events} (workspace_id, seq, workflow_id, what, at, prev_hash,"
    " hash) VALUES (:ws, :seq, :wf, :what, :at, :prev_hash, :hash)"
)
_MOVE_HEAD = text(
    f"UPDATE {REFERENCE_TABLES.heads} SET seq = :seq, hash = :hash WHERE workspace_id = :ws"
)


async def _chained(conn: AsyncConnection, workspace_id: int, workflow_id: int, what: str) -> None:
    """An event chained to its workspace's head, hash over the previous hash and the event,
    as tamper-evidence requires of any design: on PostgreSQL in one statement holding the
    head's row lock (as trame-bot does), on SQLite (whose write transaction holds the file)
    read, hashed here and written."""
    at = datetime.now(UTC).isoformat()
    values = {"ws": workspace_id, "wf": workflow_id, "what": what, "at": at}
    if conn.dialect.name == "postgresql":
        await conn.execute(_CHAIN_IN_DATABASE, values)
        return
    seq, prev_hash = (await conn.execute(_READ_HEAD, {"ws": workspace_id})).one()
    digest = hashlib.sha256(f"{prev_hash}{what}{at}".encode()).hexdigest()
    event = {**values, "seq": seq + 1, "prev_hash": prev_hash, "hash": digest}
    await conn.execute(_INSERT_EVENT, event)
    await conn.execute(_MOVE_HEAD, event)


_KEY, _trigger, _connector = ApiKey.__table__, Trigger.__table__, Connector.__table__
_step = array_elements(_wf.c.steps).table_valued(column("value", JSON))
_GATE_INPUTS = (
    select(
        _ws.c.id.label("workspace_id"),
        _ws.c.approval_ttl_seconds,
        _KEY.c.name.label("key_name"),
        _wf.c.id,
        _wf.c.status,
        _wf.c.version,
        _wf.c.steps,
        _wf.c.fingerprint,
        _wf.c.reviewers,
        _wf.c.required_approvals,
        _wf.c.required_details,
        _trigger.c.enabled.label("trigger_enabled"),
        _connector.c.key.label("connector"),
        _connector.c.health,
        _connector.c.scopes,
    )
    .select_from(
        _KEY.join(_ws, _ws.c.id == _KEY.c.workspace_id)
        .join(_wf, and_(_wf.c.workspace_id == _ws.c.id, _wf.c.key == bindparam("key")))
        .outerjoin(
            _trigger,
            and_(_trigger.c.workflow_id == _wf.c.id, _trigger.c.key == bindparam("trigger")),
        )
        .outerjoin(
            _connector,
            and_(
                _connector.c.workspace_id == _ws.c.id,
                _connector.c.key.in_(select(_step.c.value["connector"].as_string())),
            ),
        )
    )
    .where(_KEY.c.key_hash == bindparam("key_hash"), _KEY.c.revoked_at.is_(None))
    .with_for_update(of=_wf, read=True, key_share=True)
)
"""The key, its workspace, the workflow and every gate input in one read: a row per connector
the steps name (the workflow's columns repeated), the request's trigger joined in. The
workflow is held until the run is written, as the contract needs of any design: read apart
from the write, a pause committing in between would leave a run approved on the status it
replaced, or a pending run its cancelling missed (trame-bot's `store.run_scope.for_run` holds it so too)."""


def api_reference_app() -> web.Application:
    """Row 4's nearest design (see the module's docstring), on the same engine settings as
    trame-bot's, answering as the API does: 201 with the run's id, state, reason and
    fingerprint, 404 for an unknown key or workflow. It does the contract's work with the
    fewest statements, in one write transaction: the gate's inputs in one read (the workflow
    held), the run row (trame-bot's own table, its indexes and foreign keys) and its chained
    event. The rules are trame-bot's pure ones (`domain.gate`, `domain.plan`); no idempotency
    key, no outbox (a live run has no card)."""
    db = Database(load_settings().database_url)
    run_insert = insert(Run)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await _reference_tables(db)
        yield
        await db.dispose()

    async def request_run(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        body = await request.json()
        source, trigger = Source(body.get("source", "manual")), body.get("trigger")
        where = {"key_hash": hash_api_key(token), "key": request.match_info["key"]}
        async with db.engine.begin() as conn:
            rows = (await conn.execute(_GATE_INPUTS, {**where, "trigger": trigger})).all()
            if not rows:
                return web.json_response({"error": "not_found"}, status=404)
            run, verdict, wf = _gate_run(rows, source, trigger, body)
            await conn.execute(run_insert, run)
            what = (
                f"api:{wf.key_name}: run {run['id']} requested by {run['requested_by']}:"
                f" {verdict.state}"
            )
            await _chained(conn, wf.workspace_id, wf.id, what)
        answer = {key: run[key] for key in ("id", "state", "reason", "fingerprint")}
        return web.json_response(answer, status=201)

    app = web.Application()
    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/api/v1/workflows/{key}/runs", request_run)
    return app


def _gate_run(
    rows: Sequence[Any], source: Source, trigger: str | None, body: dict[str, Any]
) -> tuple[dict[str, Any], gate.GateDecision, Any]:
    """Row 4c's run, decided by trame-bot's pure gate on the inputs `_GATE_INPUTS` read."""
    wf, now = rows[0], datetime.now(UTC)
    steps = steps_from_dicts(wf.steps)
    found = [row for row in rows if row.connector is not None]
    verdict = gate.decide(
        wf.status,
        source,
        trigger,
        steps,
        triggers={}
        if trigger is None or wf.trigger_enabled is None
        else {trigger: wf.trigger_enabled},
        connectors={row.connector: row.health for row in found},
        scopes={row.connector: row.scopes for row in found},
    )
    pending = verdict.state is RunState.PENDING
    run = {
        "id": uuid.uuid4().hex,
        "workspace_id": wf.workspace_id,
        "workflow_id": wf.id,
        "workflow_version": wf.version,
        "workflow_status": wf.status,
        "source": source,
        "trigger_key": trigger,
        "requested_by": body.get("requested_by"),
        "plan": [step.to_dict() for step in steps],
        "fingerprint": wf.fingerprint,
        "details": {**wf.required_details, **body.get("details", {})},
        "state": verdict.state,
        "reason": verdict.reason,
        "required_approvals": wf.required_approvals,
        "approvals": 0,
        "reviewers": wf.reviewers,
        "requested_at": now,
        "expires_at": now + timedelta(seconds=wf.approval_ttl_seconds) if pending else None,
        "decided_at": None if pending else now,
        "decided_by": None if pending else NEAREST_DESIGN,
    }
    return run, verdict, wf


def insert_app() -> web.Application:
    """One INSERT per request on the same database, through the same engine settings."""
    db = Database(load_settings().database_url)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {INSERT_TABLE} "
                    "(id VARCHAR(32) PRIMARY KEY, body TEXT NOT NULL, at VARCHAR(40) NOT NULL)"
                )
            )
        yield
        await db.dispose()

    async def insert(request: web.Request) -> web.Response:
        body = await request.json()
        row = {
            "id": uuid.uuid4().hex,
            "body": json.dumps(body),
            "at": datetime.now(UTC).isoformat(),
        }
        async with db.engine.begin() as conn:
            await conn.execute(
                text(f"INSERT INTO {INSERT_TABLE} (id, body, at) VALUES (:id, :body, :at)"), row
            )
        return web.json_response({"id": row["id"]}, status=201)

    app = web.Application()
    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/runs", insert)
    return app


# ---- the fake Slack --------------------------------------------------------------------------


class IndexedFakeSlack(FakeSlack):
    """The sandbox fake, with O(1) message lookup: `chat.update` scans a channel's list in the
    sandbox (fine for tests), which would make a 100,000-card channel the bottleneck here.
    Messages are only ever appended, so indexing the new tail keeps the index exact."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self._index: dict[str, tuple[int, dict[str, Message]]] = {}

    def message(self, channel: str, ts: str) -> Message | None:
        messages = self._channels.get(channel, [])
        seen, by_ts = self._index.get(channel, (0, {}))
        for message in messages[seen:]:
            by_ts[message.ts] = message
        self._index[channel] = (len(messages), by_ts)
        return by_ts.get(ts)


def fake_slack_app() -> web.Application:
    """The fake Slack of `trame_bot.sandbox`, plus `GET /bench/stats` (calls per method and
    outcome), `GET /bench/updates` (successful `chat.update` calls per message, "channel ts"),
    `POST /bench/cards?channel=C&count=N` (bot messages to update, as if posted) and
    `POST /bench/teams` (a JSON list of `{team, name, token, channels, users}`: Slack teams the
    app is installed in, each with its bot token, channels and users; distributed mode).
    Finished calls are folded into counters every second so the fake's memory stays flat."""
    settings = load_settings()
    fake = IndexedFakeSlack(settings.slack_bot_token or "")
    counted: Counter[str] = Counter()
    updated: Counter[str] = Counter()

    def fold() -> None:
        keep = []
        for call in fake.calls:
            if call.status is None:
                keep.append(call)
            else:
                counted[f"{call.method} {'ok' if call.ok else call.error or call.status}"] += 1
                if call.ok and call.method == "chat.update":
                    updated[f"{call.args.get('channel')} {call.args.get('ts')}"] += 1
        fake.calls[:] = keep
        fake.ephemerals.clear()
        fake.responses.clear()

    async def folding(_app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(1.0)
                fold()

        task = asyncio.create_task(loop())
        yield
        task.cancel()

    async def stats(_request: web.Request) -> web.Response:
        fold()
        return web.json_response(dict(counted))

    async def updates(_request: web.Request) -> web.Response:
        fold()
        return web.json_response(dict(updated))

    async def teams(request: web.Request) -> web.Response:
        for team in await request.json():
            fake.add_team(team["team"], team["name"])
            fake.remember_token(team["team"], team["token"])
            for channel in team["channels"]:
                fake.add_channel(channel, team=team["team"])
            for user in team["users"]:
                fake.add_user(user, team=team["team"])
        return web.json_response({"ok": True})

    async def cards(request: web.Request) -> web.Response:
        channel, count = request.query["channel"], int(request.query["count"])
        posted = [
            fake.add_message(channel, "Approval needed", user=BOT_USER_ID).ts for _ in range(count)
        ]
        return web.json_response({"ts": posted})

    app = fake.app()
    app.cleanup_ctx.append(folding)
    app.router.add_get("/bench/stats", stats)
    app.router.add_post("/bench/cards", cards)
    app.router.add_get("/bench/updates", updates)
    app.router.add_post("/bench/teams", teams)
    return app


# ---- health-check URLs -----------------------------------------------------------------------


def probe_app() -> web.Application:
    async def ok(_request: web.Request) -> web.Response:
        await asyncio.sleep(PROBE_DELAY)
        return web.Response(text="ok")

    async def fail(_request: web.Request) -> web.Response:
        await asyncio.sleep(PROBE_DELAY)
        return web.Response(status=500, text="down")

    async def hang(_request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response(text="too late")

    app = web.Application()
    app.router.add_get("/ok/{n}", ok)
    app.router.add_get("/fail/{n}", fail)
    app.router.add_get("/hang/{n}", hang)
    return app


KINDS: dict[str, Callable[[], web.Application]] = {
    "trame": trame_app,
    "trame-web": lambda: trame_app(outbox=False),
    "outbox": outbox_app,
    "bare": bare_bolt_app,
    "reference": reference_app,
    "insert": insert_app,
    "api-reference": api_reference_app,
    "fake": fake_slack_app,
    "probe": probe_app,
}


async def serve(kind: str) -> None:
    # In-flight requests get a second at shutdown; the probe server's hanging ones never finish.
    runner = web.AppRunner(KINDS[kind](), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    if kind.startswith("trame"):
        freeze_startup_heap()  # as `trame-bot serve` does
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    print(json.dumps({"port": port}), flush=True)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in KINDS:
        sys.exit(f"usage: python -m bench.servers {'|'.join(KINDS)}")
    asyncio.run(serve(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])

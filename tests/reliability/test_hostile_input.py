"""Hostile input over real HTTP into the running app: malformed and forged Slack requests, huge
bodies and reasons, control characters, SQL-looking text and mrkdwn that tries to ping everyone.

Whatever arrives: the answer is never a 5xx nor a stack trace, the user is told what went wrong
where someone can be told, nothing the bot says turns user text into a mention or a link, and
a refused request writes nothing (every table keeps its row count; the audit chain verifies).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from tests import factories as f
from tests.harness import Answer, Bot, eventually
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import RunState, Status
from trame_bot.sandbox.block_kit import block_errors
from trame_bot.sandbox.slack_requests import (
    FORM,
    JSON,
    SignedRequest,
    selected_option,
    text_input,
)
from trame_bot.services import audit, workflows, workspaces
from trame_bot.slack.ids import Action, BlockId, Callback
from trame_bot.store.models import Base

MENTIONS = "<!channel> <!here> <@U0BOSS> <http://evil.example|click>"
INJECTED = ("<!channel>", "<!here>", "<@U0BOSS", "<http://evil")
"""What must never reach Slack as mrkdwn: each would ping people or disguise a link."""
CONTROL = "\x1b[31m\u202e\x07"
"""Escape, bidi override, bell. NUL has its own test: PostgreSQL text cannot hold it at all."""
NUL = "\x00"
SQL = "'; DROP TABLE runs; --"
HOSTILE = f"{MENTIONS} *bold* `tick` {CONTROL} {SQL}"
HOSTILE_DOC = f"{MENTIONS} *bold* `tick` {SQL}"
"""For API documents, which refuse control characters outright (422; see the control test)."""
BIG = 1024 * 1024 + 1

# -- the scene -------------------------------------------------------------------------------


@dataclass
class Scene:
    """The bot plus everything said to the user: acks (commands, forms) and the fake's calls."""

    bot: Bot
    channel: str
    answers: list[Answer] = field(default_factory=list)

    async def send(self, request: SignedRequest) -> Answer:
        return self.keep(await self.bot.send(request))

    async def command(self, text: str, *, user: str = f.ADMIN) -> Answer:
        return self.keep(await self.bot.command(text, user=user, channel=self.channel))

    async def click(self, action: Action, value: str, *, user: str = f.ADMIN) -> Answer:
        return self.keep(await self.bot.click(action, value, user=user, channel=self.channel))

    def keep(self, answer: Answer) -> Answer:
        self.answers.append(answer)
        assert answer.status < 500, (answer.status, answer.body)
        assert "Traceback" not in answer.body
        assert 'File "' not in answer.body
        return answer

    def decline_form(self, run_id: str, reason: str | None, **overrides: Any) -> SignedRequest:
        metadata = json.dumps({"run_id": run_id, "channel": self.channel})
        return self.bot.slack.view_submission(
            user=overrides.pop("user", f.ADMIN),
            callback_id=Callback.DECLINE,
            private_metadata=overrides.pop("private_metadata", metadata),
            values={
                BlockId.DECLINE_CATEGORY: {
                    Action.DECLINE_CATEGORY: selected_option(overrides.pop("category", "other"))
                },
                BlockId.DECLINE_REASON: {Action.DECLINE_REASON: text_input(reason)},
            },
        )

    def said(self) -> list[str]:
        """Every mrkdwn text the bot showed anyone: messages, updates, ephemerals, views,
        file comments, response_url answers, and the ephemeral texts acks carried."""
        texts: list[str] = []
        for call in self.bot.fake.calls:
            args = call.args
            if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
                texts.append(str(args.get("text") or ""))
                texts += mrkdwn(structure(args.get("blocks")))
            elif call.method.startswith("views."):
                texts += mrkdwn(structure(args.get("view")))
            elif call.method == "files.completeUploadExternal":
                texts.append(str(args.get("initial_comment") or ""))
        for response in self.bot.fake.responses:
            texts.append(str(response.body.get("text") or ""))
            texts += mrkdwn(response.body.get("blocks"))
        for answer in self.answers:
            try:
                body = json.loads(answer.body)
            except ValueError:
                texts.append(answer.body)
                continue
            if isinstance(body, dict):  # form `errors` are plain text: Slack parses nothing
                texts.append(str(body.get("text") or ""))
                texts += mrkdwn(body.get("blocks"))
        return texts

    def assert_nothing_injected(self) -> None:
        leaks = [t for t in self.said() if any(bad in t for bad in INJECTED)]
        assert not leaks, leaks

    async def quiet(self) -> None:
        """Wait for background listeners and the outbox: no new Slack call for 60 ms."""
        await self.bot.delivered()
        seen = -1
        while seen != len(self.bot.fake.calls):
            seen = len(self.bot.fake.calls)
            await asyncio.sleep(0.06)
        await self.bot.delivered()

    async def rows(self) -> dict[str, int]:
        """Row counts of every table, once background work has settled."""
        await self.quiet()
        async with self.bot.deps.db.reading() as session:
            return {
                table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
                for table in Base.metadata.sorted_tables
            }

    async def assert_chain_verifies(self) -> None:
        report = await audit.verify_chain(self.bot.deps.ctx, "acme")
        assert report.ok, report.problem


def structure(value: Any) -> Any:
    """Blocks and views arrive JSON-encoded or as JSON, as clients send them."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def mrkdwn(node: Any) -> Iterator[str]:
    """Every `mrkdwn` text object inside blocks or a view (plain_text is never parsed)."""
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            yield node["text"]
        for value in node.values():
            yield from mrkdwn(value)
    elif isinstance(node, list):
        for item in node:
            yield from mrkdwn(item)


def signed(bot: Bot, body: bytes, content_type: str = FORM) -> SignedRequest:
    return SignedRequest(body, bot.slack.sign(body, content_type=content_type))


def interaction(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


@pytest.fixture
async def scene(bot: Bot) -> Scene:
    """Workspace "acme" (the scene's channel is its approvals channel) with the pilot workflow
    "invoice-sync"."""
    ws = await f.governed_workspace(bot.deps)
    await f.workflow(bot.deps)
    return Scene(bot, ws.approvals_channel)


async def foreign_run(bot: Bot) -> str:
    """A pending run of the workspace next door, "globex"."""
    await f.governed_workspace(bot.deps, "globex")
    await f.workflow(bot.deps, "globex")
    return (await f.request(bot.deps, "globex")).id


@dataclass
class Api:
    scene: Scene
    token: str

    async def call(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None
    ) -> tuple[int, Any]:
        """The status and JSON answer of an API call with the key; never a 5xx."""
        bot = self.scene.bot
        base = bot.url.removesuffix("/slack/events") + "/api/v1"
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        payload = raw if raw is not None else None if body is None else json.dumps(body).encode()
        data = None if payload is None else io.BytesIO(payload)
        async with bot.session.request(method, base + path, data=data, headers=headers) as r:
            text = await r.text()
            assert r.status < 500, (r.status, text)
            assert "Traceback" not in text
            return r.status, json.loads(text)


@pytest.fixture
async def api(scene: Scene) -> Api:
    _, token = await workspaces.create_api_key(scene.bot.deps.ctx, "acme", "engine", Actor.cli())
    return Api(scene, token)


def hostile_workflow(key: str, name: str = HOSTILE_DOC, **overrides: Any) -> dict[str, Any]:
    return {
        "key": key,
        "name": name,
        "status": "pilot",
        "reviewers": [f.ADMIN, f.OWNER],  # reviewers must be Slack user ids: MENTIONS is a 422
        "prompt": f"Sync {HOSTILE_DOC}",
        "required_details": {HOSTILE_DOC[:150]: HOSTILE_DOC},
        "steps": [
            {"name": HOSTILE_DOC, "tool": f"t.{SQL}", "connector": "crm", "action": MENTIONS},
            {"name": f"{SQL} ✓", "tool": "sheets.append", "connector": "sheets"},
        ],
        "triggers": [{"key": "nightly", "kind": "schedule"}],
        **overrides,
    }


# -- malformed requests ----------------------------------------------------------------------


def _form(**fields: str) -> bytes:
    return urlencode(fields).encode()


ROUTABLE_OR_NOT = {
    "empty body": (b"", FORM),
    "garbage form": (b"%%%&&&===", FORM),
    "not utf-8": (bytes(range(256)), FORM),
    "command without command": (_form(text="status", user_id=f.ADMIN), FORM),
    "someone else's command": (_form(command="/other", text="x"), FORM),
    "event without event": (b'{"type": "event_callback"}', JSON),
    "unknown json type": (b'{"type": "frob"}', JSON),
    "unknown interaction type": (interaction({"type": "frob"}), FORM),
    "interaction without type": (interaction({"user": {"id": f.ADMIN}}), FORM),
}


async def test_a_signed_request_bolt_cannot_route_gets_a_4xx_and_changes_nothing(
    scene: Scene,
) -> None:
    """What Bolt really does with what it cannot route: 404 `{"error": "unhandled request"}`
    (raise_error_for_unhandled_request=False); a body that is not UTF-8 is refused with 400
    before Bolt sees it."""
    before = await scene.rows()
    for case, (body, content_type) in ROUTABLE_OR_NOT.items():
        answer = await scene.send(signed(scene.bot, body, content_type))
        assert answer.status in (400, 404), (case, answer)
        assert await scene.rows() == before, case
    await scene.assert_chain_verifies()
    scene.assert_nothing_injected()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(_form(payload="{not json"), FORM, id="payload not json"),
        pytest.param(_form(payload=""), FORM, id="payload empty"),
        pytest.param(_form(payload="[1, 2]"), FORM, id="payload a list"),
        pytest.param(_form(payload="null"), FORM, id="payload null"),
        pytest.param(b"{oops", JSON, id="json body not json"),
        pytest.param(b"[1, 2]", JSON, id="json body a list"),
        pytest.param(b"{a=b&c=d", FORM, id="form starting with a brace"),
    ],
)
async def test_a_signed_request_bolt_cannot_parse_gets_400_not_500(
    scene: Scene, body: bytes, content_type: str
) -> None:
    before = await scene.rows()
    answer = await scene.send(signed(scene.bot, body, content_type))
    assert answer.status in (400, 404), answer
    assert await scene.rows() == before


async def test_an_unsigned_unroutable_request_gets_401(scene: Scene) -> None:
    headers = {"Content-Type": FORM}
    async with scene.bot.session.post(scene.bot.url, data=b"%%%===", headers=headers) as response:
        assert response.status == 401


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(_form(payload="{not json"), FORM, id="payload not json"),
        pytest.param(b"[1, 2]", JSON, id="json body a list"),
    ],
)
async def test_an_unsigned_unparseable_request_gets_401_not_500(
    scene: Scene, body: bytes, content_type: str
) -> None:
    """The signature is checked before the body is believed: no signature, no 5xx."""
    before = await scene.rows()
    headers = {"Content-Type": content_type}
    async with scene.bot.session.post(scene.bot.url, data=body, headers=headers) as response:
        text = await response.text()
        assert response.status in (400, 401), (response.status, text)
    assert await scene.rows() == before


def _click_payload(scene: Scene, **changes: Any) -> dict[str, Any]:
    payload = scene.bot.slack.block_action(
        user=f.ADMIN,
        action_id=Action.APPROVE,
        value="0" * 32,
        block_id=BlockId.RUN_ACTIONS,
        channel=scene.channel,
        message_ts="1.000001",
    ).json()
    for key, value in changes.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


async def test_a_click_with_missing_fields_is_answered_and_changes_nothing(scene: Scene) -> None:
    cases: dict[str, tuple[dict[str, Any], int]] = {
        # (changes to a genuine click, how many ephemerals the clicker has been shown after it)
        "no actions": ({"actions": None}, 0),
        "no channel": ({"channel": None, "container": None}, 0),
        "no value": ({"actions": [{"action_id": Action.APPROVE, "block_id": "x"}]}, 1),
        "empty value": ({"actions": [{"action_id": Action.DECLINE, "value": ""}]}, 2),
        "value not a string": ({"actions": [{"action_id": Action.APPROVE, "value": 7}]}, 3),
    }
    before = await scene.rows()
    for case, (changes, told) in cases.items():
        request = signed(scene.bot, interaction(_click_payload(scene, **changes)))
        assert (await scene.send(request)).status in (200, 404), case
        if told:
            assert "not known here" in (await scene.bot.told(f.ADMIN, told))[-1], case
        assert await scene.rows() == before, case
    scene.assert_nothing_injected()


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(
            {"actions": []},
            id="empty actions",
        ),
        pytest.param(
            {"user": None},
            id="no user",
        ),
    ],
)
async def test_a_click_missing_what_the_listener_needs_is_not_a_5xx(
    scene: Scene, changes: dict[str, Any]
) -> None:
    before = await scene.rows()
    await scene.send(signed(scene.bot, interaction(_click_payload(scene, **changes))))
    assert await scene.rows() == before


async def test_a_decline_form_with_missing_or_broken_fields_gets_a_field_error(
    scene: Scene,
) -> None:
    run = await f.request(scene.bot.deps)
    long_enough = "a reason long enough"
    cases = {
        "no reason": (None, None, "at least 10 characters"),
        "blank reason": (None, "   \n\t   ", "at least 10 characters"),
        "bad metadata": ("{not json", long_enough, "not connected"),
        "empty metadata": ("{}", long_enough, "not connected"),
        "null fields": ('{"run_id": null, "channel": null}', long_enough, "not connected"),
        "no run id": (json.dumps({"channel": scene.channel}), long_enough, "not known here"),
        "bad category": (None, long_enough, "choose one of the listed reasons"),
    }
    before = await scene.rows()
    for case, (metadata, reason, expected) in cases.items():
        extra: dict[str, Any] = {} if metadata is None else {"private_metadata": metadata}
        if case == "bad category":
            extra["category"] = HOSTILE
        answer = await scene.send(scene.decline_form(run.id, reason, **extra))
        assert answer.json["response_action"] == "errors", case
        assert expected in answer.json["errors"][BlockId.DECLINE_REASON], (case, answer)
        assert await scene.rows() == before, case
    assert await scene.bot.state_of(run.id) is RunState.PENDING


async def test_a_decline_form_whose_metadata_is_not_an_object_gets_a_field_error(
    scene: Scene,
) -> None:
    run = await f.request(scene.bot.deps)
    before = await scene.rows()
    answer = await scene.send(
        scene.decline_form(run.id, "a reason long enough", private_metadata="[1]")
    )
    assert answer.json["response_action"] == "errors"
    assert await scene.rows() == before


async def test_unknown_action_and_callback_ids_are_answered_and_change_nothing(
    scene: Scene,
) -> None:
    run = await f.request(scene.bot.deps)
    before = await scene.rows()
    unknown_button = scene.bot.slack.block_action(
        user=f.MEMBER,
        action_id=f"run_approve_v0 {HOSTILE}",
        value=run.id,
        block_id=HOSTILE,
        channel=scene.channel,
        message_ts="1.000001",
    )
    assert (await scene.send(unknown_button)).status == 200
    assert "older version" in (await scene.bot.told(f.MEMBER))[0]
    unknown_form = scene.bot.slack.view_submission(
        user=f.MEMBER, callback_id=HOSTILE, private_metadata=HOSTILE, values={}
    )
    assert ((answer := await scene.send(unknown_form)).status, answer.body) == (200, "")
    closed = scene.bot.slack.view_closed(user=f.MEMBER, callback_id="decline_run_v0")
    assert (await scene.send(closed)).status in (200, 404)
    unknown_event = scene.bot.slack.event({"type": "reaction_added", "user": f.MEMBER})
    assert (await scene.send(unknown_event)).status in (200, 404)
    assert await scene.rows() == before
    assert await scene.bot.state_of(run.id) is RunState.PENDING
    scene.assert_nothing_injected()


# -- forged buttons and forms ----------------------------------------------------------------


async def test_a_forged_button_value_is_not_known_here_and_changes_nothing(scene: Scene) -> None:
    foreign = await foreign_run(scene.bot)
    forged = [
        foreign,  # another workspace's run, clicked from this workspace's channel
        "0123456789abcdef0123456789abcdef",
        "../../runs/" + foreign,
        "x" * 2000,
        HOSTILE,
        foreign + NUL,  # PostgreSQL cannot even compare a NUL
    ]
    before = await scene.rows()
    for number, value in enumerate(forged):
        await scene.click(Action.APPROVE, value)
        await scene.click(Action.DECLINE, value)
        told = await scene.bot.told(f.ADMIN, count=2 * (number + 1))
        assert all("not known here" in t for t in told), (value[:40], told)
    assert not scene.bot.fake.calls_to("views.open"), "no decline form for a run not known here"
    assert await scene.bot.state_of(foreign, "globex") is RunState.PENDING
    assert await scene.rows() == before
    await scene.assert_chain_verifies()
    scene.assert_nothing_injected()


async def test_a_forged_decline_form_naming_another_workspaces_run_is_refused(
    scene: Scene,
) -> None:
    foreign = await foreign_run(scene.bot)
    before = await scene.rows()
    for channel in (scene.channel, None, HOSTILE):
        metadata = json.dumps({"run_id": foreign, "channel": channel})
        answer = await scene.send(
            scene.decline_form(foreign, "a reason long enough", private_metadata=metadata)
        )
        assert answer.json["response_action"] == "errors"
        error = answer.json["errors"][BlockId.DECLINE_REASON]
        assert "not known here" in error or "not connected" in error, error
    assert await scene.bot.state_of(foreign, "globex") is RunState.PENDING
    assert await scene.rows() == before


# -- sizes -----------------------------------------------------------------------------------


async def test_a_body_over_1_mb_is_refused_by_slack_events_and_the_api(
    scene: Scene, api: Api
) -> None:
    before = await scene.rows()
    command = scene.bot.slack.command(
        "pause invoice-sync " + "y" * BIG, user=f.ADMIN, channel=scene.channel
    )
    async with scene.bot.session.post(
        scene.bot.url, data=io.BytesIO(command.body), headers=command.headers
    ) as response:
        assert response.status == 413
        assert "Traceback" not in await response.text()
    status, body = await api.call(
        "PUT",
        "/workflows/invoice-sync",
        raw=json.dumps({**hostile_workflow("invoice-sync"), "name": "y" * BIG}).encode(),
    )
    assert (status, body["error"]) == (413, "too_large")
    assert await scene.rows() == before
    assert (
        await workflows.get_workflow(scene.bot.deps.ctx, "acme", "invoice-sync")
    ).status is Status.PILOT


async def test_a_100_000_character_reason_is_refused_with_a_clear_message(
    scene: Scene, api: Api
) -> None:
    run = await f.request(scene.bot.deps)
    before = await scene.rows()
    long = "why " * 25_000
    answer = await scene.send(scene.decline_form(run.id, long))
    assert "too long" in answer.json["errors"][BlockId.DECLINE_REASON]
    paused = await scene.command(f"pause invoice-sync {long}")
    assert "too long" in paused.text
    status, body = await api.call(
        "POST",
        "/workflows/invoice-sync/status",
        {"status": "paused", "actor": f.ADMIN, "reason": long},
    )
    assert status == 422
    assert "reason" in body["fields"]
    assert await scene.bot.state_of(run.id) is RunState.PENDING
    assert (
        await workflows.get_workflow(scene.bot.deps.ctx, "acme", "invoice-sync")
    ).status is Status.PILOT
    assert await scene.rows() == before
    await scene.assert_chain_verifies()


# -- control characters and SQL-looking text -------------------------------------------------


async def test_control_characters_and_sql_are_data_or_refused_never_a_5xx(
    scene: Scene, api: Api
) -> None:
    """Kept exactly as typed (SQL is only ever a bound parameter), or refused with a field
    error and nothing written; never a 5xx."""
    name = f"Sync {NUL}{CONTROL} {SQL}"
    doc = hostile_workflow("odd", name=name, reviewers=[], required_details={})
    doc["steps"][1]["name"] = f"{NUL}{CONTROL}{SQL}"
    before = await scene.rows()
    status, saved = await api.call("PUT", "/workflows/odd", doc)
    if status == 422:
        assert saved["fields"]
        assert await scene.rows() == before
        return
    assert status == 201
    status, saved = await api.call("GET", "/workflows/odd")
    assert (saved["name"], saved["steps"][1]["name"]) == (name, f"{NUL}{CONTROL}{SQL}")
    status, run = await api.call("POST", "/workflows/odd/runs", {"requested_by": f.MEMBER})
    assert (status, run["state"]) == (201, "pending")
    await scene.bot.delivered()
    card = scene.bot.card(scene.channel)
    assert block_errors(card.blocks) == []
    reason = f"Wrong rows {NUL}{CONTROL} {SQL}"
    assert (await scene.send(scene.decline_form(run["id"], reason))).body == ""
    assert await scene.bot.settles(run["id"]) is RunState.DECLINED
    status, read = await api.call("GET", f"/runs/{run['id']}")
    assert read["reason"] == reason
    paused = await scene.command(f"pause odd {SQL} {NUL}{CONTROL}")
    assert "is paused" in paused.text
    missing = await scene.command(f"status {SQL}{NUL}")
    assert "no workflow" in missing.text
    rows = await scene.rows()
    assert rows["runs"] == before["runs"] + 1, "the runs table is still there"
    assert rows["workflows"] == before["workflows"] + 1
    await scene.assert_chain_verifies()
    scene.assert_nothing_injected()


# -- text that would break Slack formatting --------------------------------------------------


async def test_hostile_names_steps_and_reasons_reach_slack_inert(scene: Scene, api: Api) -> None:
    """A workflow named and described to ping everyone, requested, shown on the card, the
    Home tab and in lists, then declined with a hostile reason: every word stays text."""
    status, _ = await api.call("PUT", "/workflows/evil", hostile_workflow("evil"))
    assert status == 201
    status, run = await api.call(
        "POST",
        "/workflows/evil/runs",
        {"requested_by": f.MEMBER, "details": {MENTIONS: HOSTILE_DOC}},
    )
    assert status == 201
    await scene.bot.delivered()
    card = scene.bot.card(scene.channel)
    assert block_errors(card.blocks) == []
    assert "<!channel>" in card.blocks[0]["text"]["text"], "plain text header keeps the name"
    for text in ("workflows", "approvals", "status evil", "status", "connectors", "audit"):
        assert (await scene.command(text)).text
    await scene.send(scene.bot.slack.event(scene.bot.slack.app_home_opened(f.ADMIN)))

    async def home_published() -> bool:
        return f.ADMIN in scene.bot.fake.home_views

    await eventually(home_published)
    await scene.click(Action.DECLINE, run["id"])

    async def form_opened() -> bool:
        return bool(scene.bot.fake.calls_to("views.open"))

    await eventually(form_opened)
    assert (await scene.send(scene.decline_form(run["id"], HOSTILE))).body == ""
    assert await scene.bot.settles(run["id"]) is RunState.DECLINED
    await scene.quiet()
    assert scene.bot.thread(scene.channel, card.ts), "the decline is replied in the thread"
    assert scene.bot.fake.messages("D" + f.MEMBER[1:]), "the requester got a DM"
    scene.assert_nothing_injected()
    await scene.assert_chain_verifies()


async def test_a_production_cards_approve_confirmation_keeps_the_name_inert(
    scene: Scene, api: Api
) -> None:
    status, _ = await api.call("PUT", "/workflows/evil", hostile_workflow("evil", production=True))
    assert status == 201
    await api.call("POST", "/workflows/evil/runs", {"requested_by": f.MEMBER})
    await scene.quiet()
    assert block_errors(scene.bot.card(scene.channel).blocks) == []
    scene.assert_nothing_injected()


async def test_hostile_pause_reasons_are_announced_inert(scene: Scene, api: Api) -> None:
    status, _ = await api.call("PUT", "/workflows/evil", hostile_workflow("evil"))
    assert status == 201
    await f.request(scene.bot.deps, wf="evil")
    paused = await scene.command(f"pause evil {HOSTILE} <@U0BOSS|boss>")
    assert "is paused" in paused.text
    assert "is pilot again" in (await scene.command("resume evil")).text
    status, _ = await api.call(
        "POST",
        "/workflows/invoice-sync/status",
        {"status": "paused", "actor": f.MEMBER, "reason": HOSTILE_DOC},
    )
    assert status == 200
    await scene.quiet()
    notices = [m.text for m in scene.bot.fake.messages(scene.channel) if m.thread_ts is None]
    assert sum("paused" in n for n in notices) == 2, notices
    scene.assert_nothing_injected()
    await scene.assert_chain_verifies()


async def test_a_hostile_connector_error_is_alerted_inert(scene: Scene, api: Api) -> None:
    status, _ = await api.call("PUT", "/workflows/evil", hostile_workflow("evil"))
    assert status == 201
    status, _ = await api.call(
        "POST", "/connectors/crm/health", {"status": "error", "error": HOSTILE_DOC}
    )
    assert status == 200
    assert "needs attention" in (await scene.command("connectors")).text
    assert "on its way" in (await scene.command("digest")).text
    await scene.quiet()
    ops = (await workspaces.get_workspace(scene.bot.deps.ctx, "acme")).alerts_channel
    assert len(scene.bot.fake.messages(ops)) == 2, "the alert and the digest"
    scene.assert_nothing_injected()


async def test_hostile_commands_are_answered_inert_and_change_nothing(scene: Scene) -> None:
    cases = {
        HOSTILE: "I don't know",
        f"status {HOSTILE}": "no workflow",
        f"pause {HOSTILE}": "no workflow",
        f"resume {HOSTILE}": "no workflow",
        f"promote invoice-sync {HOSTILE}": "promote to",
        f"demote invoice-sync {HOSTILE}": "demote to",
        f"trigger invoice-sync {HOSTILE} on": "say which trigger",
        "audit workflow:<@U0BOSS>": "No audit events",
        f"role {MENTIONS} admin": "usage",
        "status <@U0BOSS|boss>": "no workflow",
        "pause invoice-sync": "say why",
    }
    before = await scene.rows()
    for text, expected in cases.items():
        answer = await scene.command(text)
        assert expected in answer.text, (text, answer.text)
        assert await scene.rows() == before, text
    scene.assert_nothing_injected()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("trigger invoice-sync <!channel> on", "no trigger", id="trigger key"),
        pytest.param("audit <!channel>:x", "not an entity", id="audit entity"),
        pytest.param("audit export <!here>", "not a time", id="audit time"),
    ],
)
async def test_a_refusal_quoting_the_users_words_keeps_them_inert(
    scene: Scene, text: str, expected: str
) -> None:
    before = await scene.rows()
    answer = await scene.command(text)
    assert expected in answer.text, answer.text
    assert await scene.rows() == before
    scene.assert_nothing_injected()


async def test_a_role_for_something_that_is_not_a_user_is_refused(scene: Scene) -> None:
    before = await scene.rows()
    answer = await scene.command("role <!channel> admin", user=f.OWNER)
    assert "usage" in answer.text or "Slack user" in answer.text, answer.text
    assert await scene.rows() == before

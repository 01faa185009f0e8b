"""Property-based fuzzing of `/api/v1`, driven by the API's own OpenAPI document.

For every operation the document lists, hypothesis generates requests — path parameters (real
keys and ids, and hostile text: unicode, `..`, percent-encoding, very long), query parameters
per their schemas plus junk, bodies (arbitrary JSON, near-valid documents with exactly one thing
wrong, bytes that are not JSON) and Authorization headers (valid, missing, malformed, revoked,
another workspace's) — and checks every answer against the document:

- never a 5xx;
- the status is one the operation documents (401 for every authenticated one), and 401 exactly
  when the key is not valid;
- the body is in a documented media type and, when JSON, validates against the documented
  schema (`#/components/schemas/…` refs resolved against the document); errors carry `error`
  and `message`; a streamed body is complete;
- a valid request (each operation's explicit examples, run first on a fresh workspace) is a 2xx.

One more test mixes all operations in one workspace, so reads see what hostile writes left.

The server runs on the test's event loop; hypothesis drives it from a worker thread
(`asyncio.to_thread`), submitting each request to the loop with `run_coroutine_threadsafe`.
Mutating requests change the workspace as they go: no property depends on the order.

The requests that once broke the API (BUGS, all fixed) are kept as regression cases at the
end of the file.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yarl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from tests import factories as f
from tests.harness import Bot
from trame_bot.bootstrap import Deps
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Verdict
from trame_bot.http import openapi
from trame_bot.http.api import build_api
from trame_bot.http.pulse import Pulse
from trame_bot.services import decisions, runs, workspaces

MAX_EXAMPLES = int(os.environ.get("TRAME_FUZZ_EXAMPLES", "60"))
"""Per operation; raise it (e.g. TRAME_FUZZ_EXAMPLES=5000) for a deeper search."""
REPLY_WITHIN = 5.0
MAX_REQUEST_LINE = 8190
"""aiohttp's HTTP parser answers a longer request line with a plain-text 400 before any
handler runs; the checks on the application's answers do not apply to that refusal."""

SETTINGS = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)

# Parametrised from the document the server serves (each test checks the served one equals it).
DOCUMENT = openapi.document()
OPERATIONS = {
    operation["operationId"]: (path, method)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
}


# ---- the workspace the requests land in ----------------------------------------------------


@dataclass
class World:
    bot: Bot
    base: str
    doc: dict[str, Any]
    token: str
    foreign_token: str
    revoked_token: str
    approved_id: str
    approved_fingerprint: str
    pending_id: str
    pending_fingerprint: str
    rejected_id: str
    validators: dict[str, Draft202012Validator] = field(default_factory=dict)

    def operation(self, operation_id: str) -> dict[str, Any]:
        path, method = OPERATIONS[operation_id]
        operation: dict[str, Any] = self.doc["paths"][path][method]
        return operation

    def validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        """A validator for a schema of the document: its `#/components/…` refs resolve against
        the document's components, carried along in the root."""
        cache_key = json.dumps(schema, sort_keys=True)
        if cache_key not in self.validators:
            root = {**schema, "components": self.doc["components"]}
            Draft202012Validator.check_schema(root)
            self.validators[cache_key] = Draft202012Validator(
                root, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
        return self.validators[cache_key]


async def build_world(bot: Bot) -> World:
    deps = bot.deps
    await f.governed_workspace(deps)
    await f.workflow(deps)
    _, token = await workspaces.create_api_key(deps.ctx, "acme", "engine", Actor.cli())
    _, revoked = await workspaces.create_api_key(deps.ctx, "acme", "old", Actor.cli())
    await workspaces.revoke_api_key(deps.ctx, "acme", "old", Actor.cli())
    await f.governed_workspace(deps, "globex")
    _, foreign = await workspaces.create_api_key(deps.ctx, "globex", "engine", Actor.cli())

    approved = await f.request(deps)
    await decisions.decide(deps.ctx, approved.id, Actor.slack(f.OWNER), Verdict.APPROVE)
    pending = await f.request(deps)
    rejected = await f.request(deps, source="trigger", trigger="no-such-trigger")
    assert (await runs.get_run(deps.ctx, "acme", approved.id))[0].state == "approved"
    assert (await runs.get_run(deps.ctx, "acme", rejected.id))[0].state == "rejected"

    base = bot.url.removesuffix("/slack/events") + "/api/v1"
    async with bot.session.get(f"{base}/openapi.json") as response:
        assert response.status == 200
        doc = await response.json()
    assert doc == json.loads(json.dumps(DOCUMENT)), "the served document is the generated one"
    return World(
        bot=bot,
        base=base,
        doc=doc,
        token=token,
        foreign_token=foreign,
        revoked_token=revoked,
        approved_id=approved.id,
        approved_fingerprint=approved.fingerprint,
        pending_id=pending.id,
        pending_fingerprint=pending.fingerprint,
        rejected_id=rejected.id,
    )


# ---- requests and replies ------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    operation: str
    method: str
    path: str
    """Already percent-encoded, sent as is."""
    query: str
    """Already percent-encoded, without the `?`."""
    headers: dict[str, str]
    body: bytes | None
    auth_valid: bool
    kind: str
    """How the body was made: none, json, near-valid, bytes; `valid` for an explicit example."""

    def __repr__(self) -> str:
        body = self.body if self.body is None or len(self.body) <= 600 else self.body[:600] + b"..."
        return (
            f"Request({self.method} {self.path}{'?' + self.query if self.query else ''} "
            f"headers={self.headers!r} body({self.kind})={body!r})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis shows a falsifying example: short, whatever the body's size."""
        printer.text(repr(self))


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    headers: dict[str, str]
    text: str
    cut_short: str | None

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 1500 else self.text[:1500] + "..."
        return f"Reply({self.status} {self.content_type} {text!r} cut_short={self.cut_short})"


async def send(world: World, request: Request, within: float = REPLY_WITHIN) -> Reply:
    url = world.base + request.path + (f"?{request.query}" if request.query else "")
    async with world.bot.session.request(
        request.method,
        yarl.URL(url, encoded=True),
        headers=request.headers,
        # A stream: aiohttp warns (an error here) about sending large raw bytes.
        data=io.BytesIO(request.body) if request.body is not None else None,
        skip_auto_headers=["Content-Type"],
        timeout=aiohttp.ClientTimeout(total=within),
    ) as response:
        raw, cut_short = b"", None
        try:
            raw = await response.read()
        except (aiohttp.ClientPayloadError, TimeoutError) as exc:
            cut_short = f"{exc!r} after the headers"
        return Reply(
            status=response.status,
            content_type=response.content_type,
            headers=dict(response.headers),
            text=raw.decode("utf-8", errors="replace"),
            cut_short=cut_short,
        )


def valid_auth(world: World) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.token}"}


def make_request(
    world: World,
    operation_id: str,
    values: dict[str, str],
    *,
    query: str = "",
    body: Any = None,
    headers: dict[str, str] | None = None,
    auth_valid: bool = True,
    kind: str = "valid",
) -> Request:
    """A request of an operation; `values` fill the path (percent-encoded already), a body
    that is not bytes is sent as JSON."""
    path, method = OPERATIONS[operation_id]
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    sent = valid_auth(world) if headers is None else headers
    if raw is not None:
        sent = {"Content-Type": "application/json", **sent}
    return Request(operation_id, method.upper(), path, query, sent, raw, auth_valid, kind)


# ---- strategies: text, JSON, bytes ---------------------------------------------------------

HOSTILE_TEXT = [
    "",
    " ",
    "\t\n",
    "\x00",
    "\x1b[31m",
    "\ud800",
    "a\udfffb",
    "\u202e",
    "\ufeff",
    "İnvoice-sync",
    "ınvoice-sync",
    "INVOICE-SYNC",
    " invoice-sync ",
    "../../etc/passwd",
    "%2e%2e%2f",
    "'; DROP TABLE runs; --",
    "<!channel> <@U0BOSS>",
    "null",
    "true",
    "0",
    "-1",
    "NaN",
    "😀😀😀",
    "e\u0301",
]
TEXT = st.one_of(
    st.text(max_size=20),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=8),
    st.sampled_from(HOSTILE_TEXT),
    st.sampled_from([65, 101, 201, 301, 2001, 3001, 20_001]).map(lambda n: "x" * n),
)
"""Lone surrogates included: json.dumps escapes them (`\\ud800`), as other clients may send."""

HOSTILE_VALUES: list[Any] = [
    *HOSTILE_TEXT,
    "2030-01-01T00:00:00",
    "2030-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    float("nan"),
    float("inf"),
    float("-inf"),
    -0.0,
    1e308,
    5e-324,
    10**30,
    -(10**30),
    2**63,
]
"""Dropped into one place of a valid body. NaN and the infinities go out as the `NaN` and
`Infinity` tokens Python's json writes (and reads): not JSON, but what such a client sends."""

INTEGERS = st.one_of(
    st.integers(-20, 20),
    st.integers(),
    st.sampled_from([2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**100]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    INTEGERS,
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)


def json_values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
        ),
        max_leaves=12,
    )


NOT_JSON = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=30).map(lambda s: s.encode()),
    st.sampled_from(
        [
            b"",
            b"{",
            b"[1,]",
            b"{'a': 1}",
            b'{"a": 1}{"b": 2}',
            b'"\xff\xfe"',
            b"\xef\xbb\xbf{}",
            b'{"status": NaN}',
            b'{"enabled": Infinity, "actor": -Infinity}',
            b"1" * 5000,
            b"[" * 100_000,
            b'{"a":' * 50_000,
            b"\x00" * 16,
            b"x" * (1024 * 1024 + 1),
        ]
    ),
)


# ---- strategies: near-valid bodies ---------------------------------------------------------

STEPS = [
    {
        "name": "Fetch",
        "tool": "salesforce.query",
        "connector": "crm",
        "action": "query",
        "access": "read",
    },
    {"name": "Append", "tool": "sheets.append", "connector": "sheets", "access": "write"},
]


def examples_for(world: World, model: str, key: str) -> list[dict[str, Any]]:
    """Small valid bodies of each request model (the URL may still not fit them)."""
    bodies: dict[str, list[dict[str, Any]]] = {
        "WorkflowDoc": [
            {
                "key": key,
                "name": "Invoice sync",
                "status": "pilot",
                "production": False,
                "required_approvals": 1,
                "reviewers": [f.OWNER, f.ADMIN],
                "prompt": "Sync the invoices.",
                "required_details": {"region": "eu", "limit": 5, "dry": True, "ratio": 0.5},
                "steps": copy.deepcopy(STEPS),
                "triggers": [{"key": "nightly", "kind": "schedule", "enabled": True}],
            },
            {"key": key, "name": "Lead digest", "steps": copy.deepcopy(STEPS[:1])},
        ],
        "ConnectorDoc": [
            {
                "key": key,
                "toolkit": "salesforce",
                "account": f"acme/{key}",
                "scopes": ["read", "write"],
                "health_url": "https://crm.example/health",
                "expires_at": "2030-01-01T00:00:00Z",
                "actor": f.ADMIN,
            },
            {"key": key, "toolkit": "google-sheets", "account": f"acme/{key}"},
        ],
        "RunRequestDoc": [
            {},
            {"requested_by": f.MEMBER, "details": {"region": "eu", "limit": 5}},
            {"source": "trigger", "trigger": "nightly"},
            {"idempotency_key": "fuzz-1", "requested_by": f.MEMBER},
            {"steps": copy.deepcopy(STEPS), "requested_by": f.OTHER},
        ],
        "StatusChangeIn": [
            {"status": "paused", "actor": f.MEMBER, "reason": "client asked"},
            {"status": "pilot", "actor": f.ADMIN},
            {"status": "draft", "actor": f.OWNER, "reason": "rework"},
            {
                "status": "live",
                "actor": f.ADMIN,
                "reason": "go",
                "sign_off": {"by": "Client CFO", "evidence": "email of 2026-01-02"},
                "rollback_plan": "pause the workflow",
            },
        ],
        "TriggerIn": [{"enabled": False, "actor": f.ADMIN}, {"enabled": True, "actor": f.MEMBER}],
        "HealthReportIn": [
            {"status": "ok"},
            {"status": "error", "error": "token expired"},
            {"status": "disconnected"},
        ],
        "AlertActionIn": [{"actor": f.ADMIN}, {"actor": f.MEMBER}, {}],
        "VerifyIn": [
            {"fingerprint": world.approved_fingerprint},
            {"fingerprint": f"  {world.approved_fingerprint.upper()} "},
            {"fingerprint": world.pending_fingerprint},
        ],
    }
    return bodies[model]


def locations(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place inside a JSON value (not the root)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*here, k)
            yield from locations(v, (*here, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*here, i)
            yield from locations(v, (*here, i))


def containers(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every object inside a JSON value, the root included."""
    if isinstance(value, dict):
        yield here
        for k, v in value.items():
            yield from containers(v, (*here, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from containers(v, (*here, i))


def at(value: Any, where: tuple[Any, ...]) -> Any:
    for step in where:
        value = value[step]
    return value


def oversized(value: Any) -> st.SearchStrategy[Any]:
    if isinstance(value, str):
        return st.sampled_from([65, 101, 129, 201, 301, 2001, 3001, 20_001]).map(
            lambda n: (value or "x") * (n // max(len(value), 1) + 1)
        )
    if isinstance(value, list):
        return st.sampled_from([11, 51, 101, 1001]).map(
            lambda n: [copy.deepcopy(value[0]) if value else "x"] * n
        )
    if isinstance(value, dict):
        return st.sampled_from([101, 1001]).map(lambda n: {f"k{i}": i for i in range(n)})
    if isinstance(value, bool):
        return st.just(2)
    if isinstance(value, int | float):
        return st.sampled_from([11, 1001, 2**63, 10**30, -1, 0])
    return st.just("x" * 3001)


def retyped(value: Any) -> Any:
    """The same information in the wrong JSON type."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return dict(enumerate(value))
    if isinstance(value, dict):
        return list(value.items())
    return 0


MUTATIONS = ["none", "none", "remove", "replace", "hostile", "oversize", "retype", "extra", "root"]


@st.composite
def near_valid(draw: st.DrawFn, examples: list[dict[str, Any]], keys: list[str]) -> Any:
    """A valid example, left as is or with exactly one thing wrong."""
    body = copy.deepcopy(draw(st.sampled_from(examples)))
    mutation = draw(st.sampled_from(MUTATIONS))
    places = list(locations(body))
    if mutation == "none":
        return body
    if mutation == "root":
        return draw(st.sampled_from([None, [], [body], "body", 0, True]))
    if mutation == "extra" or not places:
        where = draw(st.sampled_from(list(containers(body))))
        at(body, where)[draw(st.sampled_from(["unexpected", *keys]) | TEXT)] = draw(
            st.sampled_from(HOSTILE_VALUES) | json_values(st.sampled_from(keys))
        )
        return body
    where = draw(st.sampled_from(places))
    parent, last = at(body, where[:-1]), where[-1]
    if mutation == "remove":
        del parent[last]
    elif mutation == "replace":
        parent[last] = draw(
            st.one_of(
                st.sampled_from([None, True, 0, -1, 11, 1.5, "", " ", [], {}]),
                TEXT,
                json_values(st.sampled_from(keys)),
            )
        )
    elif mutation == "hostile":
        parent[last] = draw(st.sampled_from(HOSTILE_VALUES))
    elif mutation == "oversize":
        parent[last] = draw(oversized(parent[last]))
    else:
        parent[last] = retyped(parent[last])
    return body


# ---- strategies: requests per operation ----------------------------------------------------


def quoted(text: str) -> str:
    """Percent-encoded UTF-8; a lone surrogate goes out as the bytes it would have been."""
    return quote(text.encode("utf-8", errors="surrogatepass"), safe="")


RAW_SEGMENTS = [
    "..",
    ".",
    "..%2F",
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%",
    "%zz",
    "%ff",
    "%ED%A0%80",
    "%C0%AF",
    "%00",
    "%2F",
    "a%2Fb",
    "invoice-sync%20",
    "%20invoice-sync",
    "INVOICE-SYNC",
    "invoice-sync%0A",
    "crm%3Fx=1",
    "%23frag",
    "~",
    "*",
    "%25",
    "%252e",
]
"""Segments sent as they are. (A bare `a/../b` is another route's path, not this one's.)"""


def segment(known: list[str]) -> st.SearchStrategy[str]:
    """A path segment, already percent-encoded: known keys as often as hostile ones."""
    return st.one_of(
        st.sampled_from(known),
        st.sampled_from(known),
        st.sampled_from(known),
        st.sampled_from(RAW_SEGMENTS),
        st.text(min_size=1, max_size=30).map(quoted),
        st.sampled_from(HOSTILE_TEXT[1:]).map(quoted),
        st.sampled_from([65, 200, 1000, 2600]).map(lambda n: "k" * n),
    )


ENTITIES = [
    "workflow:invoice-sync",
    "connector:crm",
    "run:",
    ":x",
    "workspace:acme",
    "workflow",
    " workflow : invoice-sync ",
]
MOMENTS = [
    "7d",
    "1h",
    "0d",
    "2026-11-01",
    "2026-11-01T09:30",
    "2026-11-01T09:30:00Z",
    "2026-11-01T09:30:00+05:00",
    "0001-01-01",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31",
    "99999999999d",
    "740000d",
    "2026-13-01",
    "yesterday",
]


def query_value(schema: dict[str, Any], name: str, world: World) -> st.SearchStrategy[str]:
    """A value per the parameter's schema, a meaningful one by its name, or junk."""
    options: list[st.SearchStrategy[str]] = [st.text(max_size=20)]
    if "enum" in schema:
        options += [st.sampled_from(schema["enum"])] * 3
    if schema.get("type") in ("number", "integer"):
        low, high = schema.get("minimum", -1e6), schema.get("maximum", 1e6)
        if name == "wait":
            high = 1  # within the schema; longer holds would only slow the test down
        options += [
            st.floats(low, high).map(repr),
            st.integers(int(low), int(high)).map(str),
            st.sampled_from(["-1", "31", "nan", "inf", "-inf", "1e309", "", " 0 ", "0x1", "٣"]),
        ]
    if name == "entity":
        options += [st.sampled_from([*ENTITIES, f"run:{world.approved_id}"])] * 2
    if name in ("since", "until"):
        options += [st.sampled_from(MOMENTS)] * 2
    return st.one_of(*options)


@st.composite
def query_string(draw: st.DrawFn, parameters: list[dict[str, Any]], world: World) -> str:
    pairs: list[tuple[str, str]] = []
    for parameter in parameters:
        if parameter["in"] == "query" and draw(st.booleans()):
            value = draw(query_value(parameter["schema"], parameter["name"], world))
            pairs.append((parameter["name"], value))
    pairs += draw(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=2))
    encoded = [f"{quoted(k)}={quoted(v)}" for k, v in pairs]
    if draw(st.integers(0, 9)) == 0:
        encoded.append(
            draw(st.sampled_from(["wait=%ff", "since=%", "format", "&&", "=x", "%00=1"]))
        )
    return "&".join(encoded)


def auth_headers(world: World) -> st.SearchStrategy[tuple[dict[str, str], bool]]:
    """(headers, whether they carry a valid key)."""
    valid = [
        {"Authorization": f"Bearer {world.token}"},
        {"Authorization": f"Bearer {world.token}"},
        {"Authorization": f"bearer {world.token}"},
        {"Authorization": f"Bearer   {world.token}  "},
        {"Authorization": f"Bearer {world.foreign_token}"},
    ]
    invalid = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": world.token},
        {"Authorization": f"Basic {world.token}"},
        {"Authorization": f"Token {world.token}"},
        {"Authorization": f"Bearer {world.revoked_token}"},
        {"Authorization": f"Bearer {world.token}x"},
        {"Authorization": f"Bearer {world.token[:-1]}"},
        {"Authorization": "Bearer trame_\u00e9\u00ff"},
        {"Authorization": "Bearer " + "x" * 4000},
    ]
    latin1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
    junk = st.text(latin1, max_size=40).map(lambda t: {"Authorization": f"Bearer {t}"})
    return st.one_of(
        st.sampled_from(valid).map(lambda h: (h, True)),
        st.sampled_from(valid).map(lambda h: (h, True)),
        st.sampled_from(valid).map(lambda h: (h, True)),
        st.sampled_from(valid).map(lambda h: (h, True)),
        (st.sampled_from(invalid) | junk).map(lambda h: (h, False)),
    )


KNOWN_SEGMENTS = {
    "/workflows/": ["invoice-sync", "invoice-sync", "lead-digest", "crm"],
    "/connectors/": ["crm", "sheets", "erp", "invoice-sync"],
    "/triggers/": ["nightly", "nightly", "no-such-trigger"],
}
"""Real keys (and a few that exist elsewhere) for the segment after each prefix."""
ALERT_IDS = ["1", "2", "3", "0", "2147483648"]
"""Alert ids: the alerts the mixed test's health reports raise, and two that cannot exist."""


def model_of(operation: dict[str, Any]) -> str | None:
    body = operation.get("requestBody")
    if body is None:
        return None
    ref: str = body["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def field_names(doc: dict[str, Any], model: str) -> list[str]:
    """The property names of a request model and of every schema it refers to."""
    schemas = doc["components"]["schemas"]
    names: set[str] = set()
    seen: set[str] = set()

    def walk(schema: Any) -> None:
        if isinstance(schema, dict):
            ref = schema.get("$ref")
            if isinstance(ref, str) and ref not in seen:
                seen.add(ref)
                walk(schemas[ref.rsplit("/", 1)[-1]])
            names.update(schema.get("properties", {}))
            for value in schema.values():
                walk(value)
        elif isinstance(schema, list):
            for value in schema:
                walk(value)

    walk(schemas[model])
    return sorted(names)


def requests_for(world: World, operation_id: str) -> st.SearchStrategy[Request]:
    operation = world.operation(operation_id)
    path = OPERATIONS[operation_id][0]
    known = {
        "key": KNOWN_SEGMENTS["/workflows/" if path.startswith("/workflows") else "/connectors/"],
        "trigger": KNOWN_SEGMENTS["/triggers/"],
        "id": ALERT_IDS
        if path.startswith("/alerts")
        else [world.approved_id, world.pending_id, world.rejected_id],
    }
    model = model_of(operation)
    keys = field_names(world.doc, model) if model else []

    @st.composite
    def build(draw: st.DrawFn) -> Request:
        values = {
            parameter["name"]: draw(segment(known[parameter["name"]]))
            for parameter in operation["parameters"]
            if parameter["in"] == "path"
        }
        query = draw(query_string(operation["parameters"], world))
        if values.get("id") == world.pending_id and "wait=" in query:
            query = "wait=0.05"  # a pending run is held for the whole wait: keep the test fast
        headers, auth_valid = draw(auth_headers(world))
        body: bytes | None = None
        kind = "none"
        if model is not None:
            key = values.get("key", "")
            example_key = key if key in known["key"] else "invoice-sync"
            kind = draw(st.sampled_from(["json", "near-valid", "near-valid", "bytes"]))
            if kind == "json":
                body = json.dumps(draw(json_values(st.sampled_from(keys) | TEXT))).encode()
            elif kind == "near-valid":
                mutated = draw(near_valid(examples_for(world, model, example_key), keys))
                body = json.dumps(mutated).encode()
            else:
                body = draw(NOT_JSON)
            content_type = st.sampled_from(["application/json", "text/plain", "application/xml"])
            headers = {**headers, "Content-Type": draw(content_type)}
        request = make_request(
            world, operation_id, values, query=query, body=body, headers=headers, kind=kind
        )
        return replace(request, auth_valid=auth_valid)

    return build()


def valid_requests(world: World, operation_id: str) -> list[Request]:
    """Requests each operation must answer with a 2xx, on a fresh workspace, in this order."""
    w = world
    model = model_of(w.operation(operation_id))

    def body(key: str, i: int = 0) -> dict[str, Any]:
        assert model is not None
        return examples_for(w, model, key)[i]

    def call(values: dict[str, str], query: str = "", **kw: Any) -> Request:
        return make_request(w, operation_id, values, query=query, **kw)

    def health(status: str) -> Request:
        return make_request(w, "reportHealth", {"key": "crm"}, body={"status": status})

    def pause() -> Request:
        return make_request(w, "pauseAffected", {"key": "crm"}, body={"actor": f.MEMBER})

    return {
        "listWorkflows": lambda: [call({})],
        "putWorkflow": lambda: [
            call({"key": "invoice-sync"}, body=body("invoice-sync")),
            call({"key": "LEAD-DIGEST"}, body=body("lead-digest", 1)),
        ],
        "getWorkflow": lambda: [call({"key": "invoice-sync"}), call({"key": "INVOICE-SYNC"})],
        "changeStatus": lambda: [call({"key": "invoice-sync"}, body=body("invoice-sync"))],
        "setTrigger": lambda: [
            call({"key": "invoice-sync", "trigger": "nightly"}, body=body("invoice-sync"))
        ],
        "requestRun": lambda: [call({"key": "invoice-sync"}, body=body("invoice-sync", 1))],
        "listConnectors": lambda: [call({})],
        "putConnector": lambda: [
            call({"key": "crm"}, body=body("crm")),
            call({"key": "erp"}, body=body("erp", 1)),
        ],
        "reportHealth": lambda: [call({"key": "crm"}, body=body("crm", 1))],
        "getRun": lambda: [call({"id": w.approved_id}, "wait=1"), call({"id": w.pending_id})],
        "verifyRun": lambda: [call({"id": w.approved_id}, body=body("", i)) for i in (0, 1)],
        "exportAudit": lambda: [
            call({}),
            call({}, "format=csv&since=7d&until=2100-01-01"),
            call({}, "entity=workflow:invoice-sync&since=2020-01-01T00:00:00%2B05:00"),
        ],
        # Acting on alerts needs one: the connector's health is reported first (and its
        # recovery, to resume), each request held to its own operation's document.
        "listAlerts": lambda: [health("error"), call({}), call({}, "connector=crm")],
        "pauseAffected": lambda: [health("error"), call({"key": "CRM"}, body=body("", 1))],
        "pauseAffectedByAlert": lambda: [health("error"), call({"id": "1"}, body=body(""))],
        "resumeAffected": lambda: [
            health("error"),
            pause(),
            health("ok"),
            call({"key": "crm"}, body=body("")),
        ],
        "resumeByAlert": lambda: [
            health("error"),
            pause(),
            health("ok"),
            call({"id": "1"}, body=body("")),  # the outage's id: its recovery notice is meant
        ],
        "auditReport": lambda: [
            call({}, "entity=workflow:invoice-sync"),
            call({}, "entity=connector:crm&format=md&since=7d"),
            call({}, "entity=workflow:invoice-sync&format=jsonl&until=2100-01-01"),
        ],
    }[operation_id]()


# ---- known bugs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bug:
    summary: str
    operation: str
    values: dict[str, str]
    query: str = ""
    body: bytes | None = None


def _doc(model: str, key: str, **changes: Any) -> bytes:
    """A valid example body of `model` with `changes`, as Python's json writes it."""
    base = {
        "WorkflowDoc": {
            "key": key,
            "name": "Invoice sync",
            "steps": [{"name": "Fetch", "tool": "salesforce.query", "connector": "crm"}],
        },
        "ConnectorDoc": {"key": key, "toolkit": "salesforce", "account": "acme/crm"},
        "RunRequestDoc": {},
    }[model]
    return json.dumps({**base, **changes}).encode()


BUGS = {
    "deep-json": Bug(
        "a deeply nested JSON body is a 500 (RecursionError from json.loads), not a 400",
        "putWorkflow",
        {"key": "invoice-sync"},
        body=b"[" * 100_000,
    ),
    "audit-age-overflow": Bug(
        "an audit `since`/`until` age reaching before year 1 is a 500 (OverflowError), not a 422",
        "exportAudit",
        {},
        query="since=740000d",
    ),
    "audit-time-range": Bug(
        "an audit `since`/`until` time that is out of range once in UTC: 200 and headers sent, "
        "then the body never ends (OverflowError while streaming)",
        "exportAudit",
        {},
        query="since=0001-01-01T00:00:00%2B01:00",
    ),
    "surrogate-detail": Bug(
        "a lone surrogate in a required_details value is a 500 (UnicodeEncodeError), not a 422",
        "putWorkflow",
        {"key": "invoice-sync"},
        body=_doc("WorkflowDoc", "invoice-sync", required_details={"region": "\ud800"}),
    ),
    "surrogate-run-detail": Bug(
        "a lone surrogate in a run request's details value is a 500 (UnicodeEncodeError)",
        "requestRun",
        {"key": "invoice-sync"},
        body=_doc("RunRequestDoc", "", details={"region": "\ud800"}),
    ),
    "non-finite-detail": Bug(
        "a required_details number too large for a float (1e400) is stored as infinity and "
        "served as null, which WorkflowOut does not allow",
        "putWorkflow",
        {"key": "invoice-sync"},
        body=b'{"key": "invoice-sync", "name": "Invoice sync", "steps": [{"name": "Fetch", '
        b'"tool": "salesforce.query", "connector": "crm"}], "required_details": {"limit": 1e400}}',
    ),
    "connector-expiry-range": Bug(
        "a connector expires_at out of range once in UTC is a 500 (OverflowError), not a 422",
        "putConnector",
        {"key": "crm"},
        body=_doc("ConnectorDoc", "crm", expires_at="9999-12-31T23:59:59-01:00"),
    ),
    "nul-workflow-key": Bug(
        "a NUL in a path key is a 500 on PostgreSQL (it cannot store or compare a NUL), not a 404",
        "getWorkflow",
        {"key": "%00"},
    ),
    "nul-run-id": Bug(
        "a NUL in a run id is a 500 on PostgreSQL, not a 404",
        "getRun",
        {"id": "%00"},
        query="wait=0",
    ),
    "nul-audit-filter": Bug(
        "a NUL in an audit filter is a 500 on PostgreSQL, not a 400",
        "exportAudit",
        {},
        query="entity=workflow:%00",
    ),
}


def bug_request(world: World, bug: Bug) -> Request:
    """The reproduction: any documented answer but a 2xx may be the fix (most are a 4xx)."""
    request = make_request(world, bug.operation, bug.values, query=bug.query, body=bug.body)
    return replace(request, kind="bug")


# ---- the properties ------------------------------------------------------------------------


def check(world: World, request: Request, reply: Reply) -> None:
    operation = world.operation(request.operation)
    context = f"\n{request!r}\n{reply!r}"
    assert reply.status < 500, f"server error{context}"
    documented = set(operation["responses"])
    if operation.get("security", world.doc.get("security")):
        documented.add("401")
    assert str(reply.status) in documented, f"undocumented status {reply.status}{context}"
    request_line = len(request.method) + len(request.path) + len(request.query) + 20
    if request_line > MAX_REQUEST_LINE and reply.status == 400:
        return  # refused by the HTTP parser, before the application (see MAX_REQUEST_LINE)
    if request.auth_valid:
        assert reply.status != 401, f"a valid key was refused{context}"
    else:
        assert reply.status == 401, f"an invalid key was let through{context}"
        assert reply.headers.get("WWW-Authenticate", "").startswith("Bearer"), context
    if request.kind == "valid":
        assert 200 <= reply.status < 300, f"a valid request was refused{context}"
    assert reply.cut_short is None, f"the body was cut short{context}"
    content = operation["responses"][str(reply.status)].get("content", {})
    assert reply.content_type in content, f"undocumented media type{context}"
    schema = content[reply.content_type]["schema"]
    if reply.content_type != "application/json":
        world.validator(schema).validate(reply.text)
        if reply.content_type == "application/x-ndjson":
            assert all(isinstance(json.loads(line), dict) for line in reply.text.splitlines())
        return
    try:
        body = json.loads(reply.text)
    except ValueError:
        raise AssertionError(f"the body is not JSON{context}") from None
    errors = sorted(world.validator(schema).iter_errors(body), key=str)
    assert not errors, f"the body does not match its schema: {errors[0].message}{context}"
    if reply.status >= 400:
        assert isinstance(body.get("error"), str), context
        assert isinstance(body.get("message"), str), context


def fuzzer(
    world: World,
    strategy: st.SearchStrategy[Request],
    examples: list[Request],
    max_examples: int,
) -> Callable[[], None]:
    """A hypothesis test, run in a worker thread, sending each request to the server's loop."""
    loop = asyncio.get_running_loop()

    def property_holds(request: Request) -> None:
        reply = asyncio.run_coroutine_threadsafe(send(world, request), loop).result(timeout=30)
        check(world, request, reply)

    test = given(request=strategy)(property_holds)
    for request in reversed(examples):  # decorators apply inside out; these run in order
        test = example(request=request)(test)
    return settings(SETTINGS, max_examples=max_examples)(test)


@pytest.mark.parametrize("operation_id", list(OPERATIONS))
async def test_every_answer_is_one_the_document_promises(bot: Bot, operation_id: str) -> None:
    world = await build_world(bot)
    examples = valid_requests(world, operation_id)
    strategy = requests_for(world, operation_id)
    await asyncio.to_thread(fuzzer(world, strategy, examples, MAX_EXAMPLES))


async def test_operations_mixed_in_one_workspace_still_keep_the_document(bot: Bot) -> None:
    """Reads (lists, audit export) see whatever the hostile writes before them left behind."""
    world = await build_world(bot)
    strategy = st.sampled_from(list(OPERATIONS)).flatmap(lambda op: requests_for(world, op))
    await asyncio.to_thread(fuzzer(world, strategy, [], 2 * MAX_EXAMPLES))


async def test_the_document_describes_every_route_of_the_api(deps: Deps) -> None:
    """The fuzzing reaches every route only if the document lists them all."""
    api = build_api(deps.ctx, Pulse())
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in api.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {(method, path) for path, method in OPERATIONS.values()}
    assert routes - {("get", "/openapi.json")} == documented


@pytest.mark.parametrize("bug", list(BUGS))
async def test_a_bug_the_fuzzer_found_stays_fixed(bot: Bot, bug: str) -> None:
    """Each request the fuzzer once broke the API with (a 500, a hung stream, an answer
    outside the document), held to the same properties as the fuzzing."""
    world = await build_world(bot)
    request = bug_request(world, BUGS[bug])
    check(world, request, await send(world, request, within=1.0))

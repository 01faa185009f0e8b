"""Slack's Socket Mode for the fake: ``apps.connections.open`` hands out a websocket URL on the
fake's own server, which greets with ``hello`` and carries envelopes that the app acks.

As Slack does: only the app-level token (``xapp-…``) opens a connection (anything else is
``invalid_auth``); a URL serves one connection (a second use is refused with HTTP 401); at most
ten connections are open at once (the eleventh gets ``disconnect`` with ``too_many_websockets``);
envelopes go round-robin to the open connections, and an envelope not acked when its connection
goes away is sent again (``retry_attempt`` + 1, ``retry_reason`` ``"timeout"``) on another open
connection, or on the next one that opens. An envelope sent while no connection is open waits for
one. aiohttp answers the client's pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import WSMsgType, web

from trame_bot.sandbox.fake_records import APP_ID, Json

MAX_CONNECTIONS = 10
RETRY_REASON = "timeout"
EnvelopeKind = Literal["slash_commands", "interactive", "events_api"]
_KINDS = ("slash_commands", "interactive", "events_api")


@dataclass
class Envelope:
    """One request carried over the socket; ``retry_attempt`` counts the times it was re-sent."""

    id: str
    type: EnvelopeKind
    payload: Json
    accepts_response_payload: bool
    retry_attempt: int = 0
    retry_reason: str = ""

    def frame(self) -> Json:
        return {
            "envelope_id": self.id,
            "type": self.type,
            "payload": self.payload,
            "accepts_response_payload": self.accepts_response_payload,
            "retry_attempt": self.retry_attempt,
            "retry_reason": self.retry_reason,
        }


@dataclass(frozen=True)
class Delivery:
    """An envelope written to a connection."""

    envelope_id: str
    connection_id: str
    retry_attempt: int


@dataclass(frozen=True)
class SocketAck:
    """An ack frame as received; ``payload`` None when the ack carried none."""

    envelope_id: str
    payload: Json | None
    connection_id: str
    at: float


@dataclass
class _Connection:
    id: str
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    unacked: dict[str, Envelope] = field(default_factory=dict)
    gone: asyncio.Event = field(default_factory=asyncio.Event)


def default_accepts_response_payload(kind: EnvelopeKind, payload: Json) -> bool:
    """What Slack sets: commands and view submissions (and suggestions) take a response."""
    if kind == "slash_commands":
        return True
    if kind == "interactive":
        return payload.get("type") in ("view_submission", "block_suggestion")
    return False


class SocketHub:
    """The open connections, the envelopes in flight and the acks received."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.envelopes: dict[str, Envelope] = {}
        self.deliveries: list[Delivery] = []
        self.acks: list[SocketAck] = []
        self.frames: list[Json] = []
        """Every text frame received that was not an ack (for tests of what the app sent)."""
        self._clock = clock
        self._tickets: set[str] = set()
        self._open: list[_Connection] = []
        self._waiting: list[Envelope] = []
        self._acked: dict[str, asyncio.Future[Json]] = {}
        self._round_robin = itertools.count()
        self._changed = asyncio.Event()

    @property
    def connections(self) -> int:
        return len(self._open)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/socket/{connection_id}", self._handle)

    def open_url(self, base_url: str) -> str:
        """A single-use websocket URL on this fake (``base_url``: its http origin and prefix)."""
        connection_id = secrets.token_hex(8)
        self._tickets.add(connection_id)
        return f"ws{base_url.removeprefix('http')}/socket/{connection_id}"

    # -- for tests

    async def send(
        self, kind: EnvelopeKind, payload: Json, *, accepts_response_payload: bool | None = None
    ) -> str:
        if kind not in _KINDS:
            raise ValueError(f"envelope type must be one of {', '.join(_KINDS)}: {kind!r}")
        if accepts_response_payload is None:
            accepts_response_payload = default_accepts_response_payload(kind, payload)
        envelope = Envelope(str(uuid.uuid4()), kind, payload, accepts_response_payload)
        self.envelopes[envelope.id] = envelope
        self._acked[envelope.id] = asyncio.get_running_loop().create_future()
        if self._open:
            connection = self._open[next(self._round_robin) % len(self._open)]
            await self._write(connection, envelope)
        else:
            self._waiting.append(envelope)
        return envelope.id

    async def ack(self, envelope_id: str, within: float) -> Json:
        future = self._acked.get(envelope_id)
        if future is None:
            raise KeyError(f"no envelope {envelope_id!r} was sent")
        try:
            return await asyncio.wait_for(asyncio.shield(future), within)
        except TimeoutError:
            raise TimeoutError(f"envelope {envelope_id} not acked within {within} s") from None

    async def disconnect(self, reason: str) -> None:
        frame = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        for connection in list(self._open):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await connection.ws.send_json(frame)

    async def drop(self, within: float) -> None:
        """Close every connection without a close frame, and wait until each is gone."""
        dropped = list(self._open)
        for connection in dropped:
            if connection.transport is not None:
                connection.transport.abort()
            else:
                await connection.ws.close()
        for connection in dropped:
            await asyncio.wait_for(connection.gone.wait(), within)

    async def wait_connections(self, count: int, within: float) -> None:
        async with asyncio.timeout(within):
            while len(self._open) < count:
                self._changed.clear()
                await self._changed.wait()

    def release(self) -> None:
        """Forget futures and events bound to the loop that served this hub."""
        self._changed = asyncio.Event()

    # -- the websocket

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        connection_id = request.match_info["connection_id"]
        if connection_id not in self._tickets:
            return web.Response(status=401, text="invalid_ticket")
        self._tickets.discard(connection_id)
        ws = web.WebSocketResponse()  # autoping: aiohttp answers pings with pongs
        await ws.prepare(request)
        if len(self._open) >= MAX_CONNECTIONS:
            await ws.send_json({"type": "disconnect", "reason": "too_many_websockets"})
            await ws.close()
            return ws
        connection = _Connection(connection_id, ws, request.transport)
        self._open.append(connection)
        self._changed.set()
        try:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(self._hello())
            waiting, self._waiting = self._waiting, []
            for envelope in waiting:
                await self._write(connection, envelope)
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._receive(connection, message.data)
        finally:
            await self._lost(connection)
        return ws

    def _hello(self) -> Json:
        return {
            "type": "hello",
            "num_connections": len(self._open),
            "debug_info": {
                "host": "applink-fake",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": APP_ID},
        }

    async def _write(self, connection: _Connection, envelope: Envelope) -> None:
        # Registered before the write: if the connection goes away meanwhile, it is re-sent.
        connection.unacked[envelope.id] = envelope
        self.deliveries.append(Delivery(envelope.id, connection.id, envelope.retry_attempt))
        with contextlib.suppress(ConnectionError, RuntimeError):
            await connection.ws.send_json(envelope.frame())

    def _receive(self, connection: _Connection, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("envelope_id"), str):
            self.frames.append(frame if isinstance(frame, dict) else {"raw": data})
            return
        envelope_id = frame["envelope_id"]
        payload = frame.get("payload")
        payload = payload if isinstance(payload, dict) else None
        self.acks.append(SocketAck(envelope_id, payload, connection.id, self._clock()))
        # The app may ack on a new connection an envelope it got on one that has gone.
        for other in self._open:
            other.unacked.pop(envelope_id, None)
        self._waiting = [e for e in self._waiting if e.id != envelope_id]
        future = self._acked.get(envelope_id)
        if future is not None and not future.done():
            future.set_result(payload or {})

    async def _lost(self, connection: _Connection) -> None:
        self._open.remove(connection)
        self._changed.set()
        for envelope in connection.unacked.values():
            envelope.retry_attempt += 1
            envelope.retry_reason = RETRY_REASON
            if self._open:
                target = self._open[next(self._round_robin) % len(self._open)]
                await self._write(target, envelope)
            else:
                self._waiting.append(envelope)
        connection.unacked.clear()
        connection.gone.set()

    async def close_all(self) -> None:
        """Close every connection with a close frame (the server is stopping)."""
        for connection in list(self._open):
            await connection.ws.close(code=1001, message=b"server stopping")

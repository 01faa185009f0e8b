"""What every route of the engine's API (`http.api`) passes through before and after its
handler: errors answered as JSON with their status, the bearer key checked first, and paths
and query values that could never name anything refused. Also the request's and the app's
keys they set and read."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from trame_bot.domain.values import storable
from trame_bot.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    TrameError,
    Unauthenticated,
    Unavailable,
)
from trame_bot.http.pulse import Pulse
from trame_bot.services import workspaces
from trame_bot.services.context import Context
from trame_bot.store.workspaces import KeyHolder

log = logging.getLogger("trame_bot.api")
PREFIX = "/api/v1"
RETRY_AFTER = "5"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

WORKSPACE: web.RequestKey[str] = web.RequestKey("workspace", str)
KEY_NAME: web.RequestKey[str] = web.RequestKey("key_name", str)
KEY_HASH: web.RequestKey[str] = web.RequestKey("key_hash", str)
"""Set instead of WORKSPACE and KEY_NAME for the routes that check the key themselves."""
CTX: web.AppKey[Context] = web.AppKey("ctx", Context)
PULSE: web.AppKey[Pulse] = web.AppKey("pulse", Pulse)
KEYED: web.AppKey[frozenset[Handler]] = web.AppKey("keyed", frozenset)
"""The routes that check the bearer key in their own read (`authenticate`)."""


class MalformedBody(InvalidInput):
    """The body is not JSON at all (400), as opposed to JSON that breaks its schema (422)."""

    code = "malformed"


STATUS: dict[type[TrameError], int] = {
    MalformedBody: 400,
    Unauthenticated: 401,
    NotFound: 404,
    Forbidden: 403,
    InvalidTransition: 409,
    Conflict: 409,
    InvalidInput: 422,
    Unavailable: 503,
}


def error_response(
    status: int, code: str, message: str, fields: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": code, "message": message}
    if fields:
        body["fields"] = fields
    headers = {"Retry-After": RETRY_AFTER} if status == 503 else None
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is JSON: known errors with their status, anything else a 500 with a ref."""
    try:
        return await handler(request)
    except TrameError as exc:
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
        response = error_response(
            status, exc.code, exc.message, getattr(exc, "fields", None) or None
        )
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="trame-bot"'
        return response
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "too_large", "the body is larger than the 1 MB this API accepts")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        # A 405 must say which methods the resource has (RFC 9110 §15.5.6); aiohttp's does.
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        ref = secrets.token_hex(4)
        log.exception("unexpected error in %s %s (ref %s)", request.method, request.path, ref)
        return error_response(
            500, "internal", f"something went wrong on our side (reference {ref})"
        )


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The bearer key is checked before anything else is answered: 401 outranks every other
    answer. Most routes look the key up here; a hot one that finds its workspace by the key in
    its own read (`KEYED`) is given the key's hash, and the key is looked up here only when
    that route answers anything but success, to answer 401 instead if it is not valid."""
    if request.path == f"{PREFIX}/openapi.json":
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated
    key_hash = workspaces.hash_api_key(token.strip())
    if request.match_info.handler in request.app[KEYED]:
        request[KEY_HASH] = key_hash
        try:
            response = await handler(request)
        except Unauthenticated:
            raise
        except Exception:
            await _holder(request, key_hash)
            raise
        if response.status >= 400:
            await _holder(request, key_hash)
        return response
    found = await _holder(request, key_hash)
    request[WORKSPACE] = found.workspace
    request[KEY_NAME] = found.name
    return await handler(request)


async def _holder(request: web.Request, key_hash: str) -> KeyHolder:
    found = await workspaces.key_holder(request.app[CTX], key_hash)
    if found is None:
        raise Unauthenticated
    return found


@web.middleware
async def storable_parameters(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No key or id ever holds a control character or broken Unicode, so such a path names
    nothing (404); such a query value is malformed (400). Checked here, once, because a NUL
    reaching PostgreSQL is a driver error rather than an empty result."""
    if not all(storable(value) for value in request.match_info.values()):
        return error_response(404, "not_found", "nothing here has that key or id")
    if not all(storable(name) and storable(value) for name, value in request.query.items()):
        return error_response(
            400, "malformed", "a query parameter holds a control character or broken Unicode"
        )
    return await handler(request)


MIDDLEWARES = (errors, authenticate, storable_parameters)
"""In the order a request meets them."""

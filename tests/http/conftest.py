"""API tests: a governed workspace, an API key for it, and a small JSON client."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests import factories as f
from tests.harness import Bot
from trame_bot.domain.actors import Actor
from trame_bot.services import workspaces


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Api:
    session: aiohttp.ClientSession
    base: str
    token: str | None

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        token: str | None = "default",
        params: dict[str, str] | None = None,
    ) -> Reply:
        headers = {"Content-Type": "application/json"}
        key = self.token if token == "default" else token
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        data: Any = (
            io.BytesIO(raw)
            if raw is not None
            else (None if body is None else json.dumps(body).encode())
        )
        async with self.session.request(
            method, self.base + path, data=data, headers=headers, params=params
        ) as r:
            return Reply(r.status, dict(r.headers), await r.text())

    def as_(self, token: str | None) -> Api:
        return Api(self.session, self.base, token)


@pytest.fixture
async def api(bot: Bot) -> Api:
    await f.governed_workspace(bot.deps, webhook_url=None)
    await f.workflow(bot.deps)
    _, token = await workspaces.create_api_key(bot.deps.ctx, "acme", "engine", Actor.cli())
    return Api(bot.session, bot.url.removesuffix("/slack/events") + "/api/v1", token)

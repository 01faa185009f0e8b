"""Two servers on one database: a revoked API key and a paused workflow stop the API at once in
both, because neither server remembers a key or a workflow between requests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from tests import factories as f
from tests.harness import Bot
from tests.http.conftest import Api
from trame_bot.bootstrap import Deps, build_web_app
from trame_bot.domain.actors import Actor
from trame_bot.domain.enums import Status
from trame_bot.services import workflow_status, workspaces
from trame_bot.store.database import Database

RUN = "/workflows/invoice-sync/runs"
TRIGGERED = {"source": "trigger", "trigger": "nightly", "requested_by": f.MEMBER}


@pytest.fixture
async def replica(bot: Bot, api: Api) -> AsyncIterator[Api]:
    """A second server with its own database handle, as another process would have."""
    db = Database(bot.deps.db.url)
    server = TestServer(
        build_web_app(Deps(bot.deps.settings, db, bot.deps.clock)), host="127.0.0.1"
    )
    await server.start_server()
    try:
        yield Api(api.session, str(server.make_url("/api/v1")), api.token)
    finally:
        await server.close()
        await db.dispose()


async def test_a_revoked_key_is_refused_at_once_by_every_server(
    bot: Bot, api: Api, replica: Api
) -> None:
    for server in (api, replica, api, replica):  # each has answered, twice
        assert (await server.call("POST", RUN, TRIGGERED)).status == 201
    await workspaces.revoke_api_key(bot.deps.ctx, "acme", "engine", Actor.cli())
    for server in (api, replica):
        refused = await server.call("POST", RUN, TRIGGERED)
        assert (refused.status, refused.json["error"]) == (401, "unauthorized")


async def test_a_pause_refuses_trigger_runs_at_once_on_every_server(
    bot: Bot, api: Api, replica: Api
) -> None:
    for server in (api, replica, api, replica):
        assert (await server.call("POST", RUN, TRIGGERED)).json["state"] == "pending"
    await workflow_status.change_status(
        bot.deps.ctx, "acme", "invoice-sync", Status.PAUSED, Actor.cli(), reason="incident"
    )
    for server in (api, replica):
        refused = await server.call("POST", RUN, TRIGGERED)
        assert refused.json["state"] == "rejected"
        assert "paused" in refused.json["reason"]

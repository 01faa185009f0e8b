"""How the sandbox's Slack teams get trame-bot: through the real OAuth flow, as a person would.

An install link is made by the operator's service; the integrator's team is then installed by
walking that link over loopback HTTP like a browser (our `/slack/install`, the fake Slack's
consent page and its Allow button, our callback, with a cookie jar). A client's team keeps its
link for the page's Install button. The fake Slack keeps nothing on disk, so at a restart it is
told again the tokens it gave out before (they are in our database, sealed with the key kept
beside the database).
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
from yarl import URL

from trame_bot.errors import ConfigError
from trame_bot.sandbox.fake_slack import FakeSlack
from trame_bot.sandbox.seed import OPERATOR, SlackTeam
from trame_bot.services import install_links, installations
from trame_bot.services.context import Context
from trame_bot.vault import new_key

log = logging.getLogger("trame_bot.sandbox")
LINK_LIFETIME = timedelta(days=7)
STARTUP_WAIT = 30.0
"""Seconds the automatic install waits for this server to listen."""


# ---- the encryption key beside the database ---------------------------------------------------


def key_file(database_url: str) -> Path | None:
    """`trame-bot.db.key` beside `trame-bot.db`; None for an in-memory database."""
    path = database_url.split("///", 1)[1].split("?", 1)[0] if "///" in database_url else ""
    if not path or path == ":memory:":
        return None
    return Path(path + ".key")


def encryption_key(database_url: str) -> str:
    """The key that seals this sandbox database's Slack tokens: read from its file, or made
    (readable by its owner only) for a new database."""
    path = key_file(database_url)
    if path is None:
        return new_key()
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    key = new_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(key + "\n")
    return key


# ---- at start: restore what is installed, make links for the rest ----------------------------


@dataclass(frozen=True)
class Pending:
    """A team not installed yet, and the operator's link that installs it."""

    team: SlackTeam
    link: str


async def prepare(
    ctx: Context, fake: FakeSlack, teams: tuple[SlackTeam, ...], public_url: str
) -> dict[str, Pending]:
    """For each team: if its workspace's Slack is connected, the fake learns the stored token
    again; otherwise a new install link (by team id)."""
    pending: dict[str, Pending] = {}
    for team in teams:
        connection = await installations.slack_connection(ctx, team.workspace)
        bot = await _stored_bot(ctx, team) if connection.connected else None
        if bot is not None:
            fake.remember_token(team.id, bot)
            continue
        link = await install_links.create_install_link(
            ctx, team.workspace, OPERATOR, LINK_LIFETIME, public_url
        )
        pending[team.id] = Pending(team, link)
    return pending


async def _stored_bot(ctx: Context, team: SlackTeam) -> str | None:
    try:
        found = await installations.find_bot(ctx, team.id)
    except ConfigError as exc:
        raise ConfigError(
            f"the sandbox cannot open its stored Slack tokens ({exc.message}): its key file "
            "beside the database is missing or changed; delete the database to start afresh"
        ) from None
    return found.bot_token if found is not None else None


# ---- walking the install as a browser would ---------------------------------------------------


class ConsentForm(HTMLParser):
    """The fields of one team's form on the consent page (hidden inputs, the first person of
    the `user` select), and where it posts."""

    def __init__(self, team_id: str) -> None:
        super().__init__()
        self.team_id = team_id
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._depth = 0  # inside the team's <section> when > 0
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "section":
            if self._depth or found.get("data-team") == self.team_id:
                self._depth += 1
            return
        if not self._depth:
            return
        if tag == "form":
            self.action = found.get("action")
        elif tag == "input" and found.get("name"):
            self.fields[found["name"]] = found.get("value", "")
        elif tag == "select":
            self._select = found.get("name")
        elif tag == "option" and self._select and self._select not in self.fields:
            self.fields[self._select] = found.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self._depth:
            self._depth -= 1
        elif tag == "select":
            self._select = None


async def walk(
    session: aiohttp.ClientSession, link: str, team_id: str, installer: str
) -> tuple[int, str]:
    """Open the install link, answer Allow on the consent page as ``installer`` of
    ``team_id``, and follow Slack's redirect to our callback: its status and page. ``session``
    must keep cookies (the flow checks its state cookie in the callback)."""
    async with session.get(URL(link).update_query(team=team_id), allow_redirects=False) as started:
        page = await started.text()
        if started.status != 302:
            return started.status, page
        consent_url = URL(started.headers["Location"])
    async with session.get(consent_url) as consent:
        page = await consent.text()
        if consent.status != 200:
            return consent.status, page
    form = ConsentForm(team_id)
    form.feed(page)
    if form.action is None:
        return 404, f"the consent page offers no form for {team_id}"
    form.fields |= {"user": installer, "action": "allow"}
    async with session.post(
        consent_url.join(URL(form.action)), data=form.fields, allow_redirects=False
    ) as answer:
        if answer.status != 302:
            return answer.status, await answer.text()
        callback = answer.headers["Location"]
    async with session.get(callback, allow_redirects=False) as done:
        return done.status, await done.text()


async def install_at_start(base_url: str, pending: list[Pending]) -> None:
    """Installs each team that installs at start, once this server listens."""
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1, as a browser keeps them
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        if not await _listening(session, base_url):
            log.error("sandbox: the server did not answer; install from the page instead")
            return
        for item in pending:
            installer = item.team.people[0].id
            status, page = await walk(session, item.link, item.team.id, installer)
            if status == 200:
                log.info("sandbox: trame-bot installed in the Slack team %s", item.team.name)
            else:
                log.error(
                    "sandbox: installing %s failed (%s: %s); use the Install button on the page",
                    item.team.name,
                    status,
                    _words(page)[:300],
                )


def _words(page: str) -> str:
    """A page's text without its tags: what a person would read there."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def _listening(session: aiohttp.ClientSession, base_url: str) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_WAIT
    while loop.time() < deadline:
        try:
            async with session.get(f"{base_url}/healthz") as response:
                if response.status == 200:
                    return True
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    return False

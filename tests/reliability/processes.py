"""`trame-bot serve` as a real process (for restarts, SIGKILL and SIGTERM), and a TCP proxy
that can cut the database off."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from trame_bot.config import Settings


async def trame_bot(
    *args: str, env: Mapping[str, str], stdout: int = asyncio.subprocess.PIPE
) -> asyncio.subprocess.Process:
    """`python -m trame_bot ARGS…` as a real process with `env`; stderr piped, and stdout
    unless `stdout` says otherwise."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "trame_bot",
        *args,
        env=dict(env),
        stdout=stdout,
        stderr=asyncio.subprocess.PIPE,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """One `trame-bot serve` on a free port; the database URL and fake Slack are the tests'."""

    settings: Settings
    database_url: str
    extra: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    log: bytes = b""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "SLACK_BOT_TOKEN": self.settings.slack_bot_token or "",
            "SLACK_SIGNING_SECRET": self.settings.slack_signing_secret or "",
            "SLACK_API_URL": self.settings.slack_api_url,
            "LOG_LEVEL": "WARNING",
        }
        self.process = await trame_bot(
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-scheduler",
            *self.extra,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
        )
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                if self.process.returncode is not None:
                    break
                await asyncio.sleep(0.05)
        raise AssertionError(f"server did not start: {await self.stop()}")

    async def stop(self, sig: int = signal.SIGTERM, within: float = 25.0) -> bytes:
        """Signal the process and wait for it; returns what it wrote to stderr."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        _, stderr = await asyncio.wait_for(self.process.communicate(), timeout=within)
        self.log = stderr or b""
        return self.log


class DatabaseProxy:
    """Forwards TCP to PostgreSQL until `cut()`: then open connections drop and new ones are
    refused, as when the database host goes away; `restore()` lets them through again.
    `forget()` drops open connections the way a NAT or a firewall drops idle flows: the
    server's side ends, the client learns it only when it next sends something."""

    def __init__(self, target_port: int = 5432) -> None:
        self.target_port = target_port
        self.port = 0
        self.open = True
        self._pipes: set[asyncio.StreamWriter] = set()
        self._links: dict[asyncio.StreamWriter, asyncio.StreamWriter] = {}
        """Each open connection's client side, to its server side."""
        self._forgotten: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._pipes |= {writer, up_writer}
        self._links[writer] = up_writer

        async def upward() -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await reader.read(65536):
                    if writer in self._forgotten:
                        break  # the client spoke on a forgotten flow: it is told now
                    up_writer.write(data)
                    await up_writer.drain()
            up_writer.close()
            writer.close()

        async def downward() -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await up_reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            if writer not in self._forgotten:
                writer.close()

        await asyncio.gather(upward(), downward())
        self._links.pop(writer, None)
        self._forgotten.discard(writer)

    def cut(self) -> None:
        self.open = False
        for writer in list(self._pipes):
            writer.close()
        self._pipes.clear()

    def forget(self) -> None:
        for client, server in list(self._links.items()):
            self._forgotten.add(client)
            server.close()

    def restore(self) -> None:
        self.open = True

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

"""SQLite's memory statistics are off in a process whose first connection is trame-bot's
(`store.sqlite_library`), and left alone when a connection was open before. Each case runs in
a fresh Python process: the setting is the library's, for the whole process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the setting is changed on Linux only"
)

_MEMORY_USED = """
import asyncio, ctypes, sqlite3, _sqlite3
from sqlalchemy import text
from trame_bot.store.database import Database
from trame_bot.store.sqlite_library import stop_counting_memory

used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
used.restype = ctypes.c_int64
"""


def _run(path: Path, body: str) -> str:
    script = _MEMORY_USED + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script.replace("DB", str(path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_statistics_are_off_once_trame_bot_opened_the_first_connection(tmp_path: Path) -> None:
    out = _run(
        tmp_path / "a.db",
        """
        async def main():
            db = Database("sqlite+aiosqlite:///DB")
            async with db.engine.connect() as connection:
                await connection.execute(text("CREATE TABLE t (x)"))
                print(used(), stop_counting_memory())
            await db.engine.dispose()
        asyncio.run(main())
        """,
    )
    assert out == "0 False"  # nothing counted with a connection open; not done twice


def test_a_connection_opened_before_keeps_the_library_as_it_was(tmp_path: Path) -> None:
    out = _run(
        tmp_path / "b.db",
        """
        before = sqlite3.connect("DB")
        before.execute("CREATE TABLE t (x)")
        print(stop_counting_memory(), used() > 0, before.execute("SELECT count(*) FROM t").fetchone()[0])
        """,
    )
    assert out == "False True 0"

"""The export's chunks on SQLite: written by the database a span of events at a time, on
several connections, quickly where the text needs no quoting and with care where it does;
byte for byte what Python's csv module and `jsonl_line` write, whatever the chunking."""

from __future__ import annotations

import csv
import io
from contextlib import AsyncExitStack
from datetime import timedelta

import pytest

from tests import factories as f
from trame_bot.bootstrap import Deps
from trame_bot.domain.actors import Actor
from trame_bot.services import audit
from trame_bot.services.audit import ExportFormat
from trame_bot.store import audit as audit_store
from trame_bot.store import audit_export as export_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.audit import AuditFilter

PLAIN = "workflow wf-001: pilot → paused"
AWKWARD = [
    "a, b",
    'say "hi"',
    "two\nlines",
    "crlf\r\nline",
    "back\\slash",
    "tab\there",
    "bell\x07",
    "nul\x00byte",
    "% and %s and %w",
    "ünïcode 🚀",
]
"""Text a CSV field quotes, or a JSON string escapes, or `printf` could trip on (PostgreSQL
refuses a NUL in text: there it is an ordinary character instead)."""


async def history(deps: Deps) -> None:
    """Runs of plain events (the quick spelling) with awkward ones among them, in every
    column that holds text, and events without data or reason."""
    postgres = deps.db.dialect == "postgresql"
    async with deps.db.transaction() as session:
        ws = await workspace_store.get(session, "acme")
        for n in range(60):
            odd = AWKWARD[n // 6] if n % 6 == 5 else None
            if odd and postgres:
                odd = odd.replace("\x00", "0")
            await audit_store.append(
                session,
                ws,
                at=deps.clock.now(),
                actor=f"slack:{odd}" if odd and n % 4 == 1 else "slack:U0OWNER",
                action="test.export",
                entity_type="workflow",
                entity_id=odd if odd and n % 4 == 3 else f"wf-{n % 7:03d}",
                summary=odd if odd else PLAIN,
                data={} if n % 5 == 0 else {"n": n, "text": odd or "x"},
                reason=odd if odd and n % 2 else None,
            )


async def reference(deps: Deps, fmt: ExportFormat, where: AuditFilter) -> bytes:
    """The export as Python's csv module and `jsonl_line` write it."""
    return (await reference_rows(deps, fmt, where))[0]


async def reference_rows(deps: Deps, fmt: ExportFormat, where: AuditFilter) -> tuple[bytes, int]:
    """`reference`, and how many events it holds."""
    events = 0
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    async with deps.db.reading() as session:
        ws = await workspace_store.get(session, "acme")
        async for rows in export_store.stream_exported(session, ws.id, where):
            for row in rows:
                events += 1
                if fmt is ExportFormat.CSV:
                    writer.writerow(row)
                else:
                    buffer.write(audit.jsonl_line(row, "acme"))
    return buffer.getvalue().encode(), events


@pytest.mark.parametrize("fmt", list(ExportFormat))
async def test_sqlite_chunks_match_python_however_they_are_cut(
    deps: Deps, fmt: ExportFormat, is_postgres: bool
) -> None:
    if is_postgres:
        pytest.skip("PostgreSQL's export is its own COPY, not chunks written here")
    await f.workspace(deps)
    await history(deps)
    for where in (AuditFilter(), AuditFilter(since=deps.clock.now() - timedelta(days=1))):
        expected, events = await reference_rows(deps, fmt, where)
        assert events > 60
        for readers in (1, 2, 3):
            for batch in (1, 4, 7, 1_000):
                chunks = await chunked(deps, fmt, where, readers, batch)
                assert b"".join(lines for _, lines in chunks) == expected, (readers, batch)
                assert sum(count for count, _ in chunks) == events


async def chunked(
    deps: Deps, fmt: ExportFormat, where: AuditFilter, readers: int, batch: int
) -> list[tuple[int, bytes]]:
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(deps.db.reading()) for _ in range(readers)]
        ws = await workspace_store.get(sessions[0], "acme")
        jsonl = fmt is ExportFormat.JSONL
        return [
            chunk
            async for chunk in export_store.stream_lines(
                sessions, ws.id, "acme", where, jsonl=jsonl, batch=batch
            )
        ]


async def test_the_export_as_bytes_and_as_text(deps: Deps) -> None:
    """`export_bytes` is the file as the database wrote it; `export_events` the same text."""
    await f.workspace(deps)
    await history(deps)
    async with deps.db.reading() as session:
        last = (
            await audit_store.head(session, (await workspace_store.get(session, "acme")).id)
        ).seq
    for fmt in ExportFormat:
        for where in (
            AuditFilter(last_seq=last),
            AuditFilter(entity_type="workflow", entity_id="wf-003", last_seq=last),
        ):
            expected = await reference(deps, fmt, where)
            if fmt is ExportFormat.CSV:
                expected = audit.HEADER + expected
            as_bytes = b"".join(
                [
                    chunk
                    async for chunk in await audit.export_bytes(
                        deps.ctx, "acme", where, fmt, Actor.cli()
                    )
                ]
            )
            as_text = "".join(
                [
                    chunk
                    async for chunk in await audit.export_events(
                        deps.ctx, "acme", where, fmt, Actor.cli()
                    )
                ]
            )
            if deps.db.dialect == "sqlite":  # PostgreSQL's CSV quotes an empty text ("")
                assert as_bytes == expected
            assert as_text.encode() == as_bytes

"""Reading the audit log: filtered lists, streamed exports, and chain verification."""

from __future__ import annotations

import codecs
import os
from bisect import bisect_left, bisect_right
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass
from enum import StrEnum
from json.encoder import encode_basestring as json_string
from operator import itemgetter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from trame_bot.domain.actors import Actor
from trame_bot.domain.audit_chain import ChainReport, ChainVerifier, encoded_link
from trame_bot.domain.enums import Role
from trame_bot.domain.values import counted
from trame_bot.errors import InvalidInput
from trame_bot.services.access import require
from trame_bot.services.context import Context
from trame_bot.store import audit as store
from trame_bot.store import audit_export as export_store
from trame_bot.store import audit_verify as verify_store
from trame_bot.store import workspaces as workspace_store
from trame_bot.store.audit import AuditFilter
from trame_bot.store.audit_rows import EXPORTED
from trame_bot.store.models import AuditEvent, Workspace

ENTITY_TYPES = ("workflow", "connector", "run", "member", "workspace", "api_key", "outbox")
COLUMNS = EXPORTED
MAX_LIST = 500
CHUNK = 64 * 1024
HEADER = (",".join(COLUMNS) + "\n").encode()
"""The CSV export's first line."""
READERS = min(2, os.cpu_count() or 1)
"""Connections that read an export's chunks side by side on SQLite."""
VERIFY_READERS = min((os.cpu_count() or 1) + 1, 4)
"""PostgreSQL's connections that build verify's runs of events side by side: one more than
the machine's cores, as this process hashes on one of them and each server process also
waits while its run is sent. On 2 cores, a million events (best of 3 per process, 2–7
processes alternated), readers × runs asked ahead of each: 2 × 1 2.9–3.4× hashlib, 2 × 2
2.8–3.0×, 3 × 1 2.5–3.0×, 3 × 2 (`AHEAD`) 2.5–2.6×, 4 × 1 2.8–2.9×. At most four: each is a
pooled connection held for the verify's seconds."""


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


def parse_entity(text: str) -> tuple[str, str]:
    """`workflow:invoice-sync` → ("workflow", "invoice-sync")."""
    kind, sep, ident = text.strip().partition(":")
    if not sep or not ident or kind not in ENTITY_TYPES:
        raise InvalidInput(
            f"{text!r} is not an entity: use workflow:<key>, connector:<key> or run:<id>",
            {"entity": "type:id"},
        )
    return kind, ident.strip()


async def list_events(
    ctx: Context, key: str, where: AuditFilter, actor: Actor, *, limit: int = 50
) -> Sequence[AuditEvent]:
    """The newest `limit` events matching the filter, newest first."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        await require(session, workspace, actor, Role.ADMIN, "viewing the audit log")
        query = store.newest(workspace.id, where, min(limit, MAX_LIST))
        return (await session.execute(query)).scalars().all()


async def count_events(ctx: Context, key: str, where: AuditFilter, actor: Actor) -> int:
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        await require(session, workspace, actor, Role.ADMIN, "reading the audit log")
        query = select(func.count()).select_from(store.filtered(workspace.id, where).subquery())
        return int((await session.execute(query)).scalar_one())


async def export_events(
    ctx: Context, key: str, where: AuditFilter, fmt: ExportFormat, actor: Actor
) -> AsyncIterator[str]:
    """`export_bytes`, decoded: the file's text in chunks."""
    chunks = await export_bytes(ctx, key, where, fmt, actor)
    return _decoded(chunks)


async def _decoded(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()  # a character may straddle two chunks
    async for chunk in chunks:
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


async def export_bytes(
    ctx: Context, key: str, where: AuditFilter, fmt: ExportFormat, actor: Actor
) -> AsyncIterator[bytes]:
    """Check the actor may export, then return the file's chunks, UTF-8: the events oldest
    first, streamed in constant memory, as the database wrote them (no event becomes Python
    text on the way). The export is recorded once the last chunk is produced."""
    async with ctx.db.reading() as session:
        workspace = await workspace_store.get(session, key)
        await require(session, workspace, actor, Role.ADMIN, "exporting the audit log")
    return _export_chunks(ctx, workspace, where, fmt, actor)


async def _export_chunks(
    ctx: Context, workspace: Workspace, where: AuditFilter, fmt: ExportFormat, actor: Actor
) -> AsyncIterator[bytes]:
    now = ctx.clock.now()
    copied = export_store.Copied()
    if fmt is ExportFormat.CSV:
        yield HEADER
    if ctx.db.dialect == "postgresql":
        chunks = _copied_chunks(ctx, workspace, where, fmt, copied)
    else:
        chunks = _line_chunks(ctx, workspace, where, fmt, copied)
    async for chunk in chunks:
        yield chunk
    count = copied.rows
    async with ctx.db.transaction() as session:
        await store.append(
            session,
            workspace,
            at=now,
            actor=actor.audit_name,
            action="audit.exported",
            entity_type="workspace",
            entity_id=workspace.key,
            summary=f"audit log exported as {fmt.value} ({counted(count, 'event')})",
            data={
                "format": fmt.value,
                "events": count,
                "entity_type": where.entity_type,
                "entity_id": where.entity_id,
                "since": where.since.isoformat() if where.since else None,
                "until": where.until.isoformat() if where.until else None,
            },
        )


async def _line_chunks(
    ctx: Context,
    workspace: Workspace,
    where: AuditFilter,
    fmt: ExportFormat,
    copied: export_store.Copied,
) -> AsyncIterator[bytes]:
    """The export's lines as SQLite writes them (`export_store.stream_lines`), on `READERS`
    connections at once: SQLite's work is most of an export's, and it runs without the GIL."""
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(ctx.db.reading()) for _ in range(READERS)]
        async for count, lines in export_store.stream_lines(
            sessions, workspace.id, workspace.key, where, jsonl=fmt is ExportFormat.JSONL
        ):
            copied.rows += count
            yield lines


async def _copied_chunks(
    ctx: Context,
    workspace: Workspace,
    where: AuditFilter,
    fmt: ExportFormat,
    copied: export_store.Copied,
) -> AsyncIterator[bytes]:
    """The export written by PostgreSQL (`export_store.copy_exported`), gathered into chunks of at
    least `CHUNK` bytes."""
    pending: list[bytes] = []
    size = 0
    async with ctx.db.reading() as session:
        async for chunk in export_store.copy_exported(
            session, workspace.id, workspace.key, where, copied, jsonl=fmt is ExportFormat.JSONL
        ):
            pending.append(chunk)
            size += len(chunk)
            if size >= CHUNK:
                yield b"".join(pending)
                pending, size = [], 0
    if pending:
        yield b"".join(pending)


def jsonl_line(row: Sequence[Any], workspace: str) -> str:
    """`json.dumps(dict(zip(COLUMNS, row)), ensure_ascii=False)` and a newline, written
    directly: building a dict and a JSON encoder per row costs four times as much.

    `workspace` (the chain's name, which each hash covers) ends the line: with it a line holds
    everything its hash covers, so `trame-bot audit verify --file` checks it offline."""
    seq, at, actor, action, entity_type, entity_id, summary, reason, data, prev_hash, hash_ = row
    reason_json = "null" if reason is None else json_string(reason)
    return (
        f'{{"seq": {seq:d}, "at": {json_string(at)}, "actor": {json_string(actor)}, '
        f'"action": {json_string(action)}, "entity_type": {json_string(entity_type)}, '
        f'"entity_id": {json_string(entity_id)}, "summary": {json_string(summary)}, '
        f'"reason": {reason_json}, "data": {json_string(data)}, '
        f'"prev_hash": {json_string(prev_hash)}, "hash": {json_string(hash_)}, '
        f'"workspace": {json_string(workspace)}}}\n'
    )


async def verify_chain(ctx: Context, key: str, *, full: bool = False) -> ChainReport:
    """Recompute the whole chain, streaming; names the first event that was tampered with.

    Each event's stored bytes (`encoded`) are hashed and linked here, and nothing else is
    done per event: that the columns people read still spell those bytes, the database
    answers from the index it keeps of the rows that do not (`store.audit_spelling`). Those
    few rows (an edit, or text SQL cannot spell as Python does) are read again and encoded
    in Python, which alone decides that one was edited. With `full`, the database spells
    every event instead of trusting its index: slower, and right even after an edit of the
    database's own files."""
    verifier = ChainVerifier()
    # On SQLite a second reader measured no faster (its driver thread and the hashing take
    # turns at the GIL to hand each run over); on PostgreSQL each is a server process.
    readers = VERIFY_READERS if ctx.db.dialect == "postgresql" else 1
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(ctx.db.reading()) for _ in range(readers)]
        session = sessions[0]
        workspace = await workspace_store.get(session, key)
        head = await store.head(session, workspace.id)
        chain = workspace.key  # read once: an ORM attribute costs a little on every event
        ending = f',"workspace":{json_string(chain)}}}'.encode()
        suspects = await verify_store.mismatched(session, workspace.id, full=full)
        checking = _Checking(ctx, verifier, workspace.id, chain, ending, suspects)
        failure = await checking.packed(sessions)
        if failure is not None:
            return failure
    return verifier.finish(head.seq, head.hash)


@dataclass
class _Checking:
    """One verify's reading of the chain, fed to its `verifier`."""

    ctx: Context
    verifier: ChainVerifier
    workspace_id: int
    chain: str
    ending: bytes
    suspects: list[int]
    """Events whose columns do not spell their bytes (`verify_store.mismatched`), in order."""

    async def rows(
        self, session: AsyncSession, first_seq: int | None = None, last_seq: int | None = None
    ) -> ChainReport | None:
        """The events (all, or `first_seq`..`last_seq`) a row each: a hash per event, and an
        event that fails that way, or that the database named, checked the careful way."""
        async for batch in verify_store.stream_chain(
            session, self.workspace_id, first_seq=first_seq, last_seq=last_seq
        ):
            rows = batch
            while rows:
                cut = _next_suspect(rows, self.suspects)
                index = self.verifier.feed_prehashed(rows[:cut], self.ending)
                if index is None:
                    if cut == len(rows):
                        break
                    index = cut
                failure = await _feed_one(
                    self.ctx, self.verifier, self.workspace_id, self.chain, rows[index]
                )
                if failure is not None:
                    return failure
                rows = rows[index + 1 :]
        return None

    async def packed(self, sessions: Sequence[AsyncSession]) -> ChainReport | None:
        """The events a run at a time (`verify_store.stream_packed`, read on `sessions` in
        turn), which spares the driver a Python object per value; a run that does not hold as
        a whole, or holds an event the database named, is read again a row per event, in a
        session of its own (the runs' stream is reading ahead on these)."""
        runs = verify_store.stream_packed(sessions, self.workspace_id, self.ending)
        async with aclosing(runs):  # a failure ends the stream before its sessions close
            async for run in runs:
                named = bisect_right(self.suspects, run.last) > bisect_left(
                    self.suspects, run.first
                )
                if (
                    not named
                    and run.ends_right
                    and self.verifier.feed_packed(
                        first=run.first,
                        last=run.last,
                        count=run.count,
                        prev_hashes=run.prev_hashes,
                        hashes=run.hashes,
                        encoded=run.encoded,
                        lengths=run.lengths,
                    )
                ):
                    continue
                async with self.ctx.db.reading() as again:
                    failure = await self.rows(again, run.first, run.last)
                if failure is not None:
                    return failure
        return None


def _next_suspect(rows: Sequence[tuple[int, str, bytes, str]], suspects: list[int]) -> int:
    """Where in `rows` (in sequence order) the first event the database named stands, or
    `len(rows)`: the events before it are fed as they are, it goes the careful way."""
    if not suspects or not rows:
        return len(rows)
    first = bisect_left(suspects, rows[0][0])
    if first == len(suspects) or suspects[first] > rows[-1][0]:
        return len(rows)
    return bisect_left(rows, suspects[first], key=itemgetter(0))


async def _feed_one(
    ctx: Context,
    verifier: ChainVerifier,
    workspace_id: int,
    chain: str,
    fast: tuple[int, str, bytes, str],
) -> ChainReport | None:
    """One event checked the careful way: its columns read and encoded by `encoded_link`,
    which must give its stored bytes exactly (so an edit of either is named) and its hash.
    In a session of its own: the chain's stream is reading ahead on the first one (rows are
    never changed by the application, so both see the same event)."""
    seq, prev_hash, _, stored = fast
    async with ctx.db.reading() as session:
        found = await verify_store.one_event(session, workspace_id, seq)
    if found is None:
        return verifier.feed_encoded(seq, prev_hash, b"", stored)  # fails on its sequence number
    row, stored_bytes = found
    encoded = _encoded(chain, row, prev_hash)
    if stored_bytes != encoded:
        encoded = b""  # the columns and the stored bytes differ: one of them was edited
    return verifier.feed_encoded(seq, prev_hash, encoded, stored)


def _encoded(chain: str, row: Sequence[Any], prev_hash: str) -> bytes:
    """The bytes an exported row's hash covers (`EXPORTED` order), linked to
    `prev_hash`: the chain's, in the careful check, not necessarily the row's own."""
    seq, at, actor, action, etype, eid, summary, reason, data, _, _ = row
    return encoded_link(
        workspace=chain,
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        entity_type=etype,
        entity_id=eid,
        summary=summary,
        data=data,
        reason=reason,
        prev_hash=prev_hash,
    )

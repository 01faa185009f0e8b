"""Checking a JSON Lines audit export offline: each line's hash, and the links between lines.

An export may start mid-chain: its first event's `prev_hash` is then taken as given (or
compared with `after`, the anchor a report prints), since the events before it are not there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trame_bot.domain.audit_chain import ChainVerifier, encoded_link

TEXT_FIELDS = ("workspace", "at", "actor", "action", "entity_type", "entity_id", "summary")


@dataclass(frozen=True)
class FileReport:
    checked: int
    problem: str | None = None
    """None when the whole file verifies; otherwise names the first line that does not fit."""
    workspace: str | None = None
    first_seq: int | None = None
    first_prev_hash: str | None = None
    last_seq: int | None = None
    last_hash: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


_HASH = re.compile("[0-9a-f]{64}")


class _Bad(Exception):
    pass


def verify_lines(
    lines: Iterable[str], *, after: str | None = None, last: str | None = None
) -> FileReport:
    """Check an export's lines in order, in constant memory.

    `after` is the hash the first event must follow (the report's "first prev_hash"); `last`
    the hash the file must end with: without them a file cut at its start or its end at a line
    boundary still verifies, because nothing in it says where the window began or ended.
    """
    verifier = ChainVerifier()
    report = FileReport(0)
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue  # a blank line holds no event; a reader may add one at the end
        try:
            if not raw.endswith("\n"):
                raise _Bad("is cut short (no line end): the file was truncated")
            event = _event(raw)
        except _Bad as exc:
            return _failed(report, verifier, f"line {number} {exc}")
        seq, prev, stored = event["seq"], event["prev_hash"], event["hash"]
        if report.first_seq is None:
            if after is not None and prev != after:
                return _failed(
                    report,
                    verifier,
                    f"line {number} (event #{seq}) does not follow {after[:12]}…: "
                    "the export does not start where its report says",
                )
            verifier.expected_prev, verifier.checked = prev, seq - 1
            report = FileReport(
                0, workspace=event["workspace"], first_seq=seq, first_prev_hash=prev
            )
        elif event["workspace"] != report.workspace:
            return _failed(
                report,
                verifier,
                f"line {number} (event #{seq}) belongs to workspace {event['workspace']!r}, "
                f"not {report.workspace!r}",
            )
        failure = verifier.feed_encoded(seq, prev, _encoded(event), stored)
        if failure is not None:
            return _failed(report, verifier, f"line {number}: {failure.problem}")
    if report.first_seq is None:
        return FileReport(0, "the file holds no events")
    if last is not None and verifier.expected_prev != last:
        return _failed(
            report,
            verifier,
            f"the file ends at event #{verifier.checked}, not at {last[:12]}…: "
            "events were removed from its end, or it is not the export its report names",
        )
    return FileReport(
        verifier.checked - (report.first_seq or 1) + 1,
        workspace=report.workspace,
        first_seq=report.first_seq,
        first_prev_hash=report.first_prev_hash,
        last_seq=verifier.checked,
        last_hash=verifier.expected_prev,
    )


def _failed(report: FileReport, verifier: ChainVerifier, problem: str) -> FileReport:
    good = 0 if report.first_seq is None else verifier.checked - report.first_seq + 1
    return FileReport(
        good,
        problem,
        workspace=report.workspace,
        first_seq=report.first_seq,
        first_prev_hash=report.first_prev_hash,
    )


def _event(raw: str) -> dict[str, Any]:
    try:
        event = json.loads(raw)
    except ValueError:
        raise _Bad("is not JSON: the file was cut or edited by hand") from None
    if not isinstance(event, dict):
        raise _Bad("is not an event")
    if "workspace" not in event:
        raise _Bad(
            "has no `workspace` field: it comes from an export older than offline "
            "verification; export it again"
        )
    for name in (*TEXT_FIELDS, "data", "prev_hash", "hash"):
        if not isinstance(event.get(name), str):
            raise _Bad(f"has no text `{name}`")
    for name in ("prev_hash", "hash"):
        # Hashes are spelled into an event's bytes as they are (`LinkParts`): only what we
        # write, 64 lowercase hex digits, is read as one.
        if not _HASH.fullmatch(event[name]):
            raise _Bad(f"has a `{name}` that is not a SHA-256 hash (64 lowercase hex digits)")
    if not isinstance(event.get("seq"), int) or isinstance(event["seq"], bool):
        raise _Bad("has no whole-number `seq`")
    if event.get("reason") is not None and not isinstance(event["reason"], str):
        raise _Bad("has a `reason` that is not text")
    return event


def _encoded(event: dict[str, Any]) -> bytes:
    try:
        return encoded_link(
            workspace=event["workspace"],
            seq=event["seq"],
            at=event["at"],
            actor=event["actor"],
            action=event["action"],
            entity_type=event["entity_type"],
            entity_id=event["entity_id"],
            summary=event["summary"],
            data=event["data"],
            reason=event.get("reason"),
            prev_hash=event["prev_hash"],
        )
    except UnicodeEncodeError:  # a lone surrogate written as \ud800: never ours
        return b""

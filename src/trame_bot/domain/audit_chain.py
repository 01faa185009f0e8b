"""The tamper-evident audit chain: canonical encoding, hashing, and verification of a stream.

Each workspace has its own chain. An event's hash covers its sequence number, its content and
the previous event's hash, so an edited event fails its own hash, a removed one leaves a gap in
the sequence, and a moved one breaks both its hash and the `prev_hash` link after it.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate, pairwise
from json.encoder import encode_basestring as json_string
from typing import NamedTuple

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class ChainLink:
    workspace: str
    seq: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    summary: str
    data: str
    """Canonical JSON text, stored as written so the hash can be recomputed byte for byte."""
    reason: str | None
    prev_hash: str


def format_at(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def link_hash(link: ChainLink) -> str:
    return encoded_hash(link_bytes(link))


def encoded_hash(encoded: bytes) -> str:
    """An event's hash, from the bytes `encoded_link` gives."""
    return hashlib.sha256(encoded).hexdigest()


def link_bytes(link: ChainLink) -> bytes:
    """What an event's hash covers: its fields as canonical JSON, UTF-8."""
    return encoded_link(
        workspace=link.workspace,
        seq=link.seq,
        at=format_at(link.at),
        actor=link.actor,
        action=link.action,
        entity_type=link.entity_type,
        entity_id=link.entity_id,
        summary=link.summary,
        data=link.data,
        reason=link.reason,
        prev_hash=link.prev_hash,
    )


def encoded_link(
    *,
    workspace: str,
    seq: int,
    at: str,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    summary: str,
    data: str,
    reason: str | None,
    prev_hash: str,
) -> bytes:
    """`canonical_json` of an event's fields (`at` as `format_at` writes it), UTF-8."""
    return link_parts(
        workspace=workspace,
        at=at,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        summary=summary,
        data=data,
        reason=reason,
    ).encoded(prev_hash, seq)


class LinkParts(NamedTuple):
    """An event's bytes around the two fields only its place in the chain gives: the previous
    hash and its sequence number. The bytes are `before_prev_hash`, the previous hash (hex,
    ASCII), `before_seq`, the number in decimal, `after_seq`; so whoever knows the head can
    finish them, the database included (`store.audit` chains on PostgreSQL in one statement)."""

    before_prev_hash: bytes
    before_seq: bytes
    after_seq: bytes

    def encoded(self, prev_hash: str, seq: int) -> bytes:
        seq_text = b"%d" % seq
        return (
            self.before_prev_hash + prev_hash.encode() + self.before_seq + seq_text + self.after_seq
        )


def link_parts(
    *,
    workspace: str,
    at: str,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    summary: str,
    data: str,
    reason: str | None,
) -> LinkParts:
    """`encoded_link` but for the previous hash and the sequence number.

    Byte for byte what `canonical_json` gives for this one flat shape (keys in sorted order,
    no spaces, text in NFC), written directly: `verify` encodes every event of the chain, and
    the generic walk and a JSON encoder per call cost several times more.
    """
    # One test for the usual all-ASCII event rather than one per field: NFC leaves ASCII as
    # it is, so then quoting alone is canonical (appends and verify --file encode every event).
    ascii_only = (
        f"{action}{actor}{at}{data}{entity_id}{entity_type}{reason or ''}{summary}{workspace}"
    ).isascii()
    text = json_string if ascii_only else _canonical_text
    reason_json = "null" if reason is None else text(reason)
    return LinkParts(
        (
            f'{{"action":{text(action)},"actor":{text(actor)},"at":{text(at)},"data":{text(data)},'
            f'"entity_id":{text(entity_id)},"entity_type":{text(entity_type)},"prev_hash":"'
        ).encode(),
        f'","reason":{reason_json},"seq":'.encode(),
        f',"summary":{text(summary)},"workspace":{text(workspace)}}}'.encode(),
    )


def _canonical_text(value: str) -> str:
    """A string as `canonical_json` writes it: NFC (ASCII already is), then JSON-quoted as
    `json.dumps(..., ensure_ascii=False)` quotes it."""
    return json_string(value if value.isascii() else unicodedata.normalize("NFC", value))


@dataclass(frozen=True)
class ChainReport:
    checked: int
    problem: str | None = None
    """None when the chain verifies; otherwise names the first bad event and what is wrong."""
    bad_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class ChainVerifier:
    """Checks `(link, stored hash)` pairs fed in sequence order, in constant memory."""

    def __init__(self) -> None:
        self.expected_prev = GENESIS_HASH
        self.checked = 0

    def feed(self, link: ChainLink, stored_hash: str) -> ChainReport | None:
        """None while the chain holds; the report naming the first bad event otherwise."""
        return self.feed_encoded(link.seq, link.prev_hash, link_bytes(link), stored_hash)

    def feed_encoded(
        self, seq: int, prev_hash: str, encoded: bytes, stored_hash: str
    ) -> ChainReport | None:
        """`feed` for an event already encoded (`encoded_link`): the streaming verify's path."""
        expected_seq = self.checked + 1
        if seq != expected_seq:
            what = "removed" if seq > expected_seq else "moved or duplicated"
            return ChainReport(
                self.checked,
                f"event #{expected_seq} is missing or out of place (found #{seq}): "
                f"an event was {what}",
                expected_seq,
            )
        if prev_hash != self.expected_prev:
            return ChainReport(
                self.checked,
                f"event #{seq} does not follow the event before it: an event was moved "
                "or the one before it was edited",
                seq,
            )
        if hashlib.sha256(encoded).hexdigest() != stored_hash:
            return ChainReport(self.checked, f"event #{seq} was edited after it was written", seq)
        self.expected_prev, self.checked = stored_hash, expected_seq
        return None

    def feed_prehashed(
        self, rows: Sequence[tuple[int, str, bytes, str]], ending: bytes
    ) -> int | None:
        """Feed `(seq, prev_hash, encoded, stored_hash)` rows, `encoded` being the bytes stored
        with the event (`store.audit_verify.stream_chain`) and `ending` how every event of this chain
        ends (`,"workspace":<key>}`); the index of the first row that fails here, for the
        caller to check through `feed_encoded` with its own encoding, or None when all held.
        The loop is the whole cost of verifying a million events, so it does the least per
        row; that the other columns spell `encoded` is the database's check, made apart."""
        seq = self.checked
        previous = self.expected_prev
        sha256 = hashlib.sha256
        index = 0
        try:
            for index, (row_seq, row_prev, encoded, stored) in enumerate(rows):
                if (
                    row_seq != seq + 1
                    or row_prev != previous
                    or not encoded.endswith(ending)
                    or sha256(encoded).hexdigest() != stored
                ):
                    self.checked, self.expected_prev = seq, previous
                    return index
                seq, previous = row_seq, stored
        except (TypeError, AttributeError):  # `encoded` is not bytes: stored by hand
            self.checked, self.expected_prev = seq, previous
            return index
        self.checked, self.expected_prev = seq, previous
        return None

    def feed_packed(
        self,
        *,
        first: int,
        last: int,
        count: int,
        prev_hashes: str,
        hashes: str,
        encoded: bytes,
        lengths: Sequence[int],
    ) -> bool:
        """Feed a run of events as one (`store.audit_verify.stream_packed`): the `count` events
        numbered `first`..`last`, in that order, their `prev_hash`es and `hash`es run
        together, their stored bytes run together and the length of each. True when the whole
        run holds; False (nothing fed) for the caller to feed the run event by event, which
        names the first bad one. No Python runs per event but the hashing itself: the rest is
        one comparison of strings each.

        A run holds every number from `first` to `last` when it has that many events: a
        chain's numbers are unique (a unique index), and an event doubled in spite of it
        would not follow the one before it, which the `prev_hash`es check. The numbers are
        not read one by one: turning a million of them into text cost the database and this
        process more than anything but the bytes and their hashing."""
        if (
            not count
            or first != self.checked + 1
            or count != last - first + 1
            or prev_hashes != self.expected_prev + hashes[:-64]
        ):
            return False
        ends = list(accumulate(lengths))
        if len(ends) != count or ends[-1] != len(encoded):
            return False
        view = memoryview(encoded)
        sha256 = hashlib.sha256
        digests = [sha256(view[start:end]).hexdigest() for start, end in pairwise([0, *ends])]
        if "".join(digests) != hashes:
            return False
        self.checked, self.expected_prev = last, hashes[-64:]
        return True

    def finish(self, head_seq: int, head_hash: str) -> ChainReport:
        """Compare the end of the chain with its head, which catches a cut or rewritten tail."""
        if self.checked < head_seq:
            return ChainReport(
                self.checked,
                f"the chain ends at event #{self.checked} but its head records #{head_seq}: "
                "the last events were removed",
                self.checked + 1,
            )
        if self.checked > head_seq or self.expected_prev != head_hash:
            return ChainReport(
                self.checked,
                f"event #{self.checked} does not match the chain head: it was changed or added "
                "after it was written",
                self.checked,
            )
        return ChainReport(self.checked)


def verify(
    stored: Iterable[tuple[ChainLink, str]], *, head_seq: int, head_hash: str
) -> ChainReport:
    """Check a whole chain against its recorded head."""
    verifier = ChainVerifier()
    for link, stored_hash in stored:
        failure = verifier.feed(link, stored_hash)
        if failure is not None:
            return failure
    return verifier.finish(head_seq, head_hash)

"""The audit chain: hashing, and naming the first edited, removed or moved event."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from trame_bot.domain.audit_chain import (
    GENESIS_HASH,
    ChainLink,
    ChainVerifier,
    link_bytes,
    link_hash,
    verify,
)

Chain = list[tuple[ChainLink, str]]
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _link(seq: int, prev_hash: str = GENESIS_HASH) -> ChainLink:
    return ChainLink(
        workspace="acme",
        seq=seq,
        at=T0 + timedelta(minutes=seq),
        actor="slack:U1",
        action="workflow.status_changed",
        entity_type="workflow",
        entity_id="weekly-report",
        summary=f"event {seq}",
        data=f'{{"seq":{seq}}}',
        reason=None,
        prev_hash=prev_hash,
    )


def _chain(length: int = 5) -> Chain:
    chain: Chain = []
    prev = GENESIS_HASH
    for seq in range(1, length + 1):
        link = _link(seq, prev)
        prev = link_hash(link)
        chain.append((link, prev))
    return chain


def _verify(stored: Chain, head: Chain | None = None) -> tuple[bool, int | None]:
    """Verify `stored` against the head of the untouched chain `head` (default: `stored`)."""
    head = head or stored
    report = verify(stored, head_seq=head[-1][0].seq, head_hash=head[-1][1])
    assert report.ok is (report.problem is None)
    return report.ok, report.bad_seq


def _rehashed(links: list[ChainLink]) -> Chain:
    """What someone who rewrites the chain after a change would store."""
    chain: Chain = []
    prev = GENESIS_HASH
    for link in links:
        link = replace(link, prev_hash=prev)
        prev = link_hash(link)
        chain.append((link, prev))
    return chain


def test_link_hash_is_deterministic() -> None:
    assert link_hash(_link(1)) == link_hash(_link(1))
    assert re.fullmatch(r"[0-9a-f]{64}", link_hash(_link(1)))


def test_link_hash_covers_the_instant_not_its_zone() -> None:
    paris = timezone(timedelta(hours=1))
    same_instant = replace(_link(1), at=_link(1).at.astimezone(paris))
    assert link_hash(same_instant) == link_hash(_link(1))


ONE = _link(1)


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(replace(ONE, workspace="other"), id="workspace"),
        pytest.param(replace(ONE, seq=2), id="seq"),
        pytest.param(replace(ONE, at=T0), id="at"),
        pytest.param(replace(ONE, actor="cli"), id="actor"),
        pytest.param(replace(ONE, action="workflow.updated"), id="action"),
        pytest.param(replace(ONE, entity_type="run"), id="entity_type"),
        pytest.param(replace(ONE, entity_id="other"), id="entity_id"),
        pytest.param(replace(ONE, summary="event one"), id="summary"),
        pytest.param(replace(ONE, data='{"seq":2}'), id="data"),
        pytest.param(replace(ONE, reason="because"), id="reason"),
        pytest.param(replace(ONE, prev_hash="f" * 64), id="prev_hash"),
    ],
)
def test_link_hash_covers_every_field(changed: ChainLink) -> None:
    assert link_hash(changed) != link_hash(ONE)


def test_an_intact_chain_verifies() -> None:
    chain = _chain(5)
    report = verify(chain, head_seq=5, head_hash=chain[-1][1])
    assert report.ok
    assert report.checked == 5
    assert report.bad_seq is None


def test_an_empty_chain_verifies_against_the_genesis_head() -> None:
    assert verify([], head_seq=0, head_hash=GENESIS_HASH).ok


def test_an_edited_event_is_named() -> None:
    chain = _chain(5)
    link, stored_hash = chain[2]
    chain[2] = (replace(link, summary="nothing to see"), stored_hash)
    assert _verify(chain) == (False, 3)


def test_an_edited_event_with_a_recomputed_hash_breaks_the_next_link() -> None:
    chain = _chain(5)
    edited = replace(chain[1][0], reason="rewritten")
    chain[1] = (edited, link_hash(edited))
    assert _verify(chain) == (False, 3)


def test_a_rewritten_chain_is_caught_by_its_head() -> None:
    original = _chain(5)
    links = [link for link, _ in original]
    links[1] = replace(links[1], summary="rewritten")
    ok, _ = _verify(_rehashed(links), head=original)
    assert not ok


def test_a_rewritten_last_event_is_named_by_the_head() -> None:
    original = _chain(5)
    links = [link for link, _ in original]
    links[4] = replace(links[4], summary="rewritten")
    assert _verify(_rehashed(links), head=original) == (False, 5)


@pytest.mark.parametrize("removed", [1, 3, 4])
def test_a_removed_event_is_named(removed: int) -> None:
    chain = _chain(5)
    del chain[removed - 1]
    assert _verify(chain, head=_chain(5)) == (False, removed)


def test_a_removed_last_event_is_caught_by_the_head() -> None:
    chain = _chain(5)
    assert _verify(chain[:-1], head=chain) == (False, 5)


def test_events_read_out_of_order_are_named() -> None:
    chain = _chain(5)
    chain[1], chain[2] = chain[2], chain[1]
    assert _verify(chain) == (False, 2)


def test_events_that_swapped_numbers_are_named() -> None:
    """Moving an event means renumbering it: read in sequence order, #2 now holds the old #3."""
    chain = _chain(5)
    (second, second_hash), (third, third_hash) = chain[1], chain[2]
    chain[1] = (replace(third, seq=2), third_hash)
    chain[2] = (replace(second, seq=3), second_hash)
    assert _verify(chain) == (False, 2)


def test_a_duplicated_event_is_named() -> None:
    chain = _chain(5)
    chain.insert(2, chain[1])
    assert _verify(chain, head=_chain(5)) == (False, 3)


def test_an_event_of_another_workspace_is_refused() -> None:
    chain = _chain(5)
    link, stored_hash = chain[3]
    chain[3] = (replace(link, workspace="globex"), stored_hash)
    assert _verify(chain) == (False, 4)


ENDING = b',"workspace":"acme"}'


def _stored_rows(chain: Chain) -> list[tuple[int, str, bytes, str]]:
    """The chain as `store.audit_verify.stream_chain` reads it: seq, prev_hash, bytes, hash."""
    return [(link.seq, link.prev_hash, link_bytes(link), stored) for link, stored in chain]


def _run(rows: list[tuple[int, str, bytes, str]]) -> dict[str, Any]:
    """The rows as `store.audit_verify.stream_packed` packs them."""
    return {
        "first": min(seq for seq, _, _, _ in rows),
        "last": max(seq for seq, _, _, _ in rows),
        "count": len(rows),
        "prev_hashes": "".join(prev for _, prev, _, _ in rows),
        "hashes": "".join(stored for _, _, _, stored in rows),
        "encoded": b"".join(encoded for _, _, encoded, _ in rows),
        "lengths": [len(encoded) for _, _, encoded, _ in rows],
    }


def test_stored_bytes_verify_row_by_row_and_packed_alike() -> None:
    rows = _stored_rows(_chain(6))
    by_row, packed = ChainVerifier(), ChainVerifier()
    assert by_row.feed_prehashed(rows[:3], ENDING) is None
    assert by_row.feed_prehashed(rows[3:], ENDING) is None
    assert packed.feed_packed(**_run(rows[:3]))
    assert packed.feed_packed(**_run(rows[3:]))
    for verifier in (by_row, packed):
        assert verifier.finish(6, rows[-1][3]).ok


BROKEN_RUNS = {
    "edited bytes": lambda rows: [*rows[:2], (3, rows[2][1], rows[2][2] + b" ", rows[2][3])],
    "a removed event": lambda rows: [*rows[:2], *rows[3:]],
    "the first one removed": lambda rows: rows[1:],
    "one doubled in place of another": lambda rows: [*rows[:2], rows[1], *rows[3:]],
    "two swapped": lambda rows: [rows[0], rows[2], rows[1], *rows[3:]],
    "another chain's bytes": lambda rows: [
        *rows[:2],
        (3, rows[2][1], rows[2][2].replace(b'"acme"', b'"evil"'), rows[2][3]),
    ],
}


@pytest.mark.parametrize("case", BROKEN_RUNS, ids=list(BROKEN_RUNS))
def test_a_broken_run_is_refused_whole_and_named_row_by_row(case: str) -> None:
    rows = BROKEN_RUNS[case](_stored_rows(_chain(5)))
    packed = ChainVerifier()
    assert not packed.feed_packed(**_run(rows))
    assert packed.checked == 0  # nothing fed: the caller reads the run again row by row
    assert ChainVerifier().feed_prehashed(rows, ENDING) is not None

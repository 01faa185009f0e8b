"""What a connector's scopes grant, whether a step's access is covered, and which grants no step
needs (least privilege). Grammar, one word per scope, the power case-insensitive:

- `read` or `read:<target>` reads (everything, or one channel/folder such as `read:#ops`);
- `write:<target>` writes to that target only (`write:#ops`, `write:folder/x`);
- `write` writes anywhere; `*`, `all` and `admin` are broad: everything, administration too;
- any other word is the source system's own (`chat:write`, `crm.objects.read`…): kept as given,
  and read conservatively as "may grant anything": it never makes a connector read-only (so it
  never refuses a step), it is flagged as over-privileged unless a step writes through the
  connector, and adding it widens the scopes. An empty list records nothing: nothing is checked.

Steps name no target, so any write grant covers a writing step; a broad word is more than any
step needs, so it is always over-privileged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from trame_bot.domain.enums import Access

BROAD = frozenset({"*", "all", "admin"})


class Power(StrEnum):
    READ = "read"
    WRITE = "write"
    BROAD = "broad"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Grant:
    word: str
    """The scope as stored (trimmed)."""
    power: Power
    target: str | None = None
    """`#ops` for `write:#ops`; None when the grant is not limited to a target."""

    def covers(self, other: Grant) -> bool:
        """Whether holding this grant already gives everything `other` gives."""
        if self.power is Power.BROAD:
            return True
        if self.power is Power.UNKNOWN or other.power is Power.UNKNOWN:
            return self.word == other.word
        return self.power is other.power and self.target in (None, other.target)


def grant(word: str) -> Grant:
    word = word.strip()
    power, colon, target = word.partition(":")
    power = power.lower()
    if word.lower() in BROAD:
        return Grant(word, Power.BROAD)
    if power in (Power.READ, Power.WRITE) and (not colon or target.strip()):
        return Grant(word, Power(power), target.strip() if colon else None)
    return Grant(word, Power.UNKNOWN)


def grants(scopes: Iterable[str]) -> tuple[Grant, ...]:
    return tuple(grant(s) for s in scopes if s.strip())


def read_only(scopes: Iterable[str]) -> bool:
    """Recorded scopes that all only read: a step cannot write through them."""
    found = grants(scopes)
    return bool(found) and all(g.power is Power.READ for g in found)


def covers(scopes: Iterable[str], access: Access) -> bool:
    return access is Access.READ or not read_only(scopes)


def refusal(key: str, scopes: Sequence[str]) -> str:
    """Why a step may not write through connector `key`, with what to do about it."""
    shown = ", ".join(scopes)
    return (
        f"connector {key!r} is granted read only (scopes: {shown}); grant write in the source "
        "system and re-apply the connector, or make the step read"
    )


def write_refusals(
    steps: Sequence[tuple[str, Access]], scopes: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    """`steps.N.access` → reason, for each step (connector, access) its connector cannot carry.
    Connectors absent from `scopes` are someone else's concern (unknown connector)."""
    return {
        f"steps.{i}.access": refusal(connector, scopes[connector])
        for i, (connector, access) in enumerate(steps)
        if connector in scopes and not covers(scopes[connector], access)
    }


def over_privileged(scopes: Iterable[str], accesses: Iterable[Access]) -> tuple[str, ...]:
    """The scope words no step needs, given the accesses of every step using the connector."""
    writes = Access.WRITE in set(accesses)
    return tuple(
        g.word
        for g in grants(scopes)
        if g.power is Power.BROAD or (g.power is not Power.READ and not writes)
    )


def over_privileged_in(
    connectors: Mapping[str, Sequence[str]], steps: Iterable[tuple[str, Access]]
) -> dict[str, tuple[str, ...]]:
    """Per connector key (only those with something to flag), the grants no step needs;
    `steps` are (connector, access) of every step of every workflow of the workspace."""
    accesses: dict[str, set[Access]] = {}
    for connector, access in steps:
        accesses.setdefault(connector, set()).add(access)
    flagged = {
        key: over_privileged(scopes, accesses.get(key, ())) for key, scopes in connectors.items()
    }
    return {key: words for key, words in flagged.items() if words}


def widened(before: Iterable[str], after: Iterable[str]) -> tuple[str, ...]:
    """The scope words of `after` that grant something no word of `before` did."""
    held = grants(before)
    return tuple(g.word for g in grants(after) if not any(h.covers(g) for h in held))

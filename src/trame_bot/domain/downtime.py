"""How long something was in a bad state (a workflow paused, a connector unhealthy) within a
window, from its state changes. Pure: the report computes durations with it and tests read it
as tables."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Change:
    at: datetime
    bad: bool
    """Whether the entity is in the bad state after this change (paused, not healthy)."""


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime
    open_at_start: bool
    """It began before the window: the window's start stands in for its real start."""
    open_at_end: bool
    """It had not ended by the window's end."""

    @property
    def length(self) -> timedelta:
        return self.end - self.start


def bad_spans(changes: Iterable[Change], *, since: datetime, until: datetime) -> list[Span]:
    """The bad stretches within [since, until), in time order.

    `changes` are in time order and may begin before the window (the last change before it gives
    the state at its start); before any change the state is good. A change to the state already
    held (needs attention → disconnected) continues the stretch; changes at or after `until`
    are ignored.
    """
    spans: list[Span] = []
    bad_from: datetime | None = None
    for change in changes:
        if change.at >= until:
            break
        if change.bad and bad_from is None:
            bad_from = change.at
        elif not change.bad and bad_from is not None:
            if change.at > since:
                spans.append(Span(max(bad_from, since), change.at, bad_from < since, False))
            bad_from = None
    if bad_from is not None and since < until:
        spans.append(Span(max(bad_from, since), until, bad_from < since, True))
    return spans


def total(spans: Iterable[Span]) -> timedelta:
    return sum((span.length for span in spans), timedelta())


def spoken(length: timedelta) -> str:
    """`2 d 3 h`, `3 h 05 min`, `12 min`, `40 s`: a duration as a client reads it."""
    seconds = int(length.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"

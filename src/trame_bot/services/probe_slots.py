"""Who may start a health probe: a few slots for probes expected to answer soon, within a
larger cap on every probe still open.

A health URL that hangs would otherwise hold its slot for the whole probe timeout, and a
handful of them throttle every healthy probe behind them. Past its soft deadline a probe gives
its slot back and goes on waiting for its answer (its own timeout still decides when it has
failed); the cap bounds how many such probes, and so sockets, the sweep holds at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ProbeSlots:
    def __init__(self, concurrency: int, max_open: int, soft_deadline: float) -> None:
        if max_open < concurrency:
            raise ValueError("max_open must be at least the concurrency")
        self._slots = asyncio.Semaphore(concurrency)
        self._open = asyncio.Semaphore(max_open)
        self._soft_deadline = soft_deadline
        self._now_open = 0
        self.most_open = 0
        """Probes open at once at the busiest moment."""
        self.slow = 0
        """Probes that gave their slot back, not answered by the soft deadline."""

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Wait for a slot, then for room under the cap; the slot is held until the probe ends
        or its soft deadline passes, the room until the probe ends."""
        # Slot first: a probe waiting for room holds a slot no other probe could use anyway
        # (all of them need room), while room taken first would be held by probes that have
        # not started.
        await self._slots.acquire()
        try:
            await self._open.acquire()
        except BaseException:
            self._slots.release()
            raise
        self._now_open += 1
        self.most_open = max(self.most_open, self._now_open)
        slot_held = True

        def give_back() -> None:
            nonlocal slot_held
            slot_held = False
            self.slow += 1
            self._slots.release()

        # A timer rather than a task watching each probe: one handle per probe, nothing to
        # cancel but the handle when the answer comes first.
        timer = asyncio.get_running_loop().call_later(self._soft_deadline, give_back)
        try:
            yield
        finally:
            timer.cancel()
            if slot_held:
                self._slots.release()
            self._now_open -= 1
            self._open.release()

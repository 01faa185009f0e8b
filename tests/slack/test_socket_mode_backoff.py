"""The wait between failed Socket Mode connections: doubling, capped, half of it random."""

from __future__ import annotations

from trame_bot.slack.socket import backoff


def test_the_wait_doubles_up_to_the_cap_and_half_of_it_is_jitter() -> None:
    lowest = [backoff(n, 1.0, 30.0, lambda: 0.0) for n in range(1, 8)]
    highest = [backoff(n, 1.0, 30.0, lambda: 1.0) for n in range(1, 8)]
    assert lowest == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    assert highest == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff(5000, 1.0, 30.0, lambda: 0.5) == 22.5, "no overflow after a long outage"

"""The retry delay of a delivery: exponential bound, full jitter, Retry-After as a floor up to a
cap (no database: a pure function with the random draw injected)."""

from __future__ import annotations

import random

import pytest

from dispatcher.sending.backoff import Uniform, retry_delay


def lowest(low: float, high: float) -> float:
    return low


def highest(low: float, high: float) -> float:
    return high


def middle(low: float, high: float) -> float:
    return (low + high) / 2


@pytest.mark.parametrize(
    ("attempt", "retry_after", "draw", "expected"),
    [
        # Full jitter: anywhere from 0 to base * 2**(attempt - 1).
        (1, None, highest, 2.0),
        (1, None, lowest, 0.0),
        (2, None, highest, 4.0),
        (3, None, middle, 4.0),
        (4, None, highest, 16.0),
        # The bound stops at the cap however many attempts were made.
        (7, None, highest, 100.0),
        (10_000, None, highest, 100.0),
        (0, None, highest, 2.0),
        # Retry-After is a floor over the jittered delay, even above the exponential cap...
        (1, 30.0, lowest, 30.0),
        (4, 3.0, highest, 16.0),
        (1, 250.0, middle, 250.0),
        # ...up to the Retry-After cap, inclusive.
        (1, 300.0, lowest, 300.0),
        # Beyond it the integration is unavailable for this delivery: no delay, fall back.
        (1, 300.5, lowest, None),
        (1, 2_592_000.0, highest, None),
    ],
)
def test_the_delay_for_an_attempt(
    attempt: int, retry_after: float | None, draw: Uniform, expected: float | None
) -> None:
    delay = retry_delay(
        attempt,
        base=2.0,
        cap=100.0,
        retry_after=retry_after,
        retry_after_cap=300.0,
        uniform=draw,
    )
    assert delay == expected


def test_the_jitter_draws_from_zero_to_the_bound() -> None:
    asked: list[tuple[float, float]] = []

    def recording(low: float, high: float) -> float:
        asked.append((low, high))
        return low

    for attempt in (1, 2, 3, 9):
        retry_delay(attempt, base=0.5, cap=3.0, retry_after_cap=60.0, uniform=recording)
    assert asked == [(0.0, 0.5), (0.0, 1.0), (0.0, 2.0), (0.0, 3.0)]


def test_a_seeded_source_gives_the_same_spread_schedule_twice() -> None:
    def schedule(seed: int) -> list[float | None]:
        draw = random.Random(seed).uniform
        return [
            retry_delay(attempt, base=1.0, cap=60.0, retry_after_cap=60.0, uniform=draw)
            for attempt in range(1, 9)
        ]

    first = schedule(7)
    assert first == schedule(7)
    # Full jitter spreads a burst: the same attempt of many deliveries lands at many times.
    spread = {
        retry_delay(3, base=1.0, cap=60.0, retry_after_cap=60.0, uniform=random.Random(s).uniform)
        for s in range(50)
    }
    assert len(spread) == 50
    assert all(delay is not None and 0.0 <= delay <= 4.0 for delay in spread)

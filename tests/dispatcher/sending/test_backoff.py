"""The retry delay of a delivery: exponential bound and full jitter, or the end of a provider's
hold, spread a little and always bounded (no database: pure functions with the random draw
injected)."""

from __future__ import annotations

import math
import random

import pytest

from dispatcher.sending.backoff import Uniform, hold_delay, retry_delay
from providers.retry_after import MAX_RETRY_AFTER


def lowest(low: float, high: float) -> float:
    return low


def highest(low: float, high: float) -> float:
    return high


def middle(low: float, high: float) -> float:
    return (low + high) / 2


@pytest.mark.parametrize(
    ("attempt", "draw", "expected"),
    [
        # Full jitter: anywhere from 0 to base * 2**(attempt - 1).
        (1, highest, 2.0),
        (1, lowest, 0.0),
        (2, highest, 4.0),
        (3, middle, 4.0),
        (4, highest, 16.0),
        # The bound stops at the cap however many attempts were made.
        (7, highest, 100.0),
        (10_000, highest, 100.0),
        (0, highest, 2.0),
    ],
)
def test_the_delay_for_an_attempt(attempt: int, draw: Uniform, expected: float) -> None:
    assert retry_delay(attempt, base=2.0, cap=100.0, uniform=draw) == expected


@pytest.mark.parametrize(
    ("held_for", "draw", "expected"),
    [
        # The hold's end, spread by up to ``spread`` seconds after it, never before it.
        (30.0, lowest, 30.0),
        (30.0, highest, 32.0),
        (3600.0, middle, 3601.0),
        # A short hold is spread by no more than itself.
        (0.5, highest, 1.0),
        # Nothing held, or nothing sane: no wait of the hold's.
        (0.0, highest, 0.0),
        (-5.0, highest, 0.0),
        (math.nan, highest, 0.0),
        # Never unbounded, whatever was passed.
        (math.inf, lowest, MAX_RETRY_AFTER),
        (1e300, lowest, MAX_RETRY_AFTER),
    ],
)
def test_the_delay_until_a_hold_ends(held_for: float, draw: Uniform, expected: float) -> None:
    assert hold_delay(held_for, spread=2.0, uniform=draw) == expected


def test_the_jitter_draws_from_zero_to_the_bound() -> None:
    asked: list[tuple[float, float]] = []

    def recording(low: float, high: float) -> float:
        asked.append((low, high))
        return low

    for attempt in (1, 2, 3, 9):
        retry_delay(attempt, base=0.5, cap=3.0, uniform=recording)
    assert asked == [(0.0, 0.5), (0.0, 1.0), (0.0, 2.0), (0.0, 3.0)]


def test_a_seeded_source_gives_the_same_spread_schedule_twice() -> None:
    def schedule(seed: int) -> list[float]:
        draw = random.Random(seed).uniform
        return [retry_delay(attempt, base=1.0, cap=60.0, uniform=draw) for attempt in range(1, 9)]

    first = schedule(7)
    assert first == schedule(7)
    # Full jitter spreads a burst: the same attempt of many deliveries lands at many times.
    spread = {
        retry_delay(3, base=1.0, cap=60.0, uniform=random.Random(s).uniform) for s in range(50)
    }
    assert len(spread) == 50
    assert all(0.0 <= delay <= 4.0 for delay in spread)

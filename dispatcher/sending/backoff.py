"""When to try a delivery again: exponential backoff with full jitter, and the end of a provider's
``Retry-After`` hold.

Full jitter (a uniform draw between 0 and the exponential bound) rather than decorrelated
jitter: it needs nothing but the attempt number, which the delivery row already stores, where
decorrelated jitter needs each delivery's previous delay; and of the jittered schedules it
spreads a burst that failed together the widest, so the provider sees the fewest colliding
retries.

The task-level retries (a worker that lost its database) use Celery's own ``retry_backoff`` and
``retry_jitter`` task options, which compute the same full-jitter schedule.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from providers.retry_after import MAX_RETRY_AFTER

#: Draws a float between its two arguments (``random.uniform``'s signature).
Uniform = Callable[[float, float], float]

#: Doubling beyond this many attempts changes nothing but risks an overflow.
_MAX_DOUBLINGS = 64


def retry_delay(
    attempt: int, *, base: float, cap: float, uniform: Uniform = random.uniform
) -> float:
    """Seconds before attempt ``attempt + 1`` on the same integration (``attempt`` counts
    from 1): a draw from ``[0, min(cap, base * 2**(attempt-1))]``."""
    bound = min(cap, base * 2.0 ** min(_MAX_DOUBLINGS, max(0, attempt - 1)))
    return uniform(0.0, bound)


def hold_delay(held_for: float, *, spread: float, uniform: Uniform = random.uniform) -> float:
    """Seconds before a delivery waiting on a held integration is tried again: the hold's end,
    plus a draw from ``[0, min(spread, held_for)]`` so that the deliveries a hold parked do not
    all come back in the same instant. Never sooner than the hold's end, never unbounded."""
    if not held_for > 0:  # NaN included
        return 0.0
    held_for = min(held_for, MAX_RETRY_AFTER)
    return held_for + uniform(0.0, max(0.0, min(spread, held_for)))

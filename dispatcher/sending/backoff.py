"""When to try a delivery again: exponential backoff with full jitter, and a provider's
``Retry-After`` honoured up to a cap.

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

#: Draws a float between its two arguments (``random.uniform``'s signature).
Uniform = Callable[[float, float], float]

#: Doubling beyond this many attempts changes nothing but risks an overflow.
_MAX_DOUBLINGS = 64


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    retry_after_cap: float,
    uniform: Uniform = random.uniform,
) -> float | None:
    """Seconds before attempt ``attempt + 1`` on the same integration (``attempt`` counts
    from 1); None when the provider asked for a pause longer than ``retry_after_cap``.

    Without ``Retry-After`` the delay is drawn from ``[0, min(cap, base * 2**(attempt-1))]``.
    A ``Retry-After`` is a floor, since the provider said when to come back; one beyond
    ``retry_after_cap`` makes the integration unavailable for this delivery (a provider
    answering "in 30 days" must not park a message for 30 days: the caller falls back).
    """
    if retry_after is not None and retry_after > retry_after_cap:
        return None
    bound = min(cap, base * 2.0 ** min(_MAX_DOUBLINGS, max(0, attempt - 1)))
    delay = uniform(0.0, bound)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay

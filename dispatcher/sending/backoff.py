"""When to try again: exponential backoff with full jitter, never sooner than Retry-After."""

from __future__ import annotations

import random


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds before attempt ``attempt + 1`` (``attempt`` counts from 1).

    Full jitter (a uniform draw up to the exponential bound) spreads retries of a burst that
    failed together; a provider's ``Retry-After`` is a floor, since it said when to come back.
    """
    bound = min(cap, base * 2 ** max(0, attempt - 1))
    delay = (rng or random).uniform(bound / 2, bound)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(cap, retry_after)))
    return delay

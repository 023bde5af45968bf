"""A send rate per integration, shared by every worker process on every machine through Redis.

The algorithm is GCRA, the generic cell rate algorithm (as in redis-cell and ``throttled``): each
integration keeps one number, its theoretical arrival time (TAT), the moment at which its next
send would be exactly on pace. A send at ``now`` may go at ``max(now, TAT - tolerance)``, and
reserving it moves the TAT on by one emission interval (``1 / rate``). Why this one:

* one round trip per send: the whole decision is one Lua script (``EVALSHA``), atomic in Redis,
  so concurrent workers can neither both take the same slot nor undercount;
* nothing refills in the background: the state is a timestamp, not a bucket of tokens, and its
  key expires once the integration is idle again;
* exact under concurrency, with bursts bounded: over any window of ``w`` seconds at most
  ``rate * w + burst`` sends are granted (a token bucket gives the same bound but needs two
  fields and a refill computation; a fixed window lets twice the rate through at its edges);
* the clock is Redis's own (``TIME``), so the machines' clocks never disagree about the pace.

A send that would have to wait longer than the caller allows reserves nothing: it learns how long
it would have waited and is retried that much later, so deferred sends do not hold slots.

The store is advisory: if Redis cannot be reached, the batch says so once in the log and sends
without pacing, as the circuit breaker does. On the embedded default (no Redis) the pace is kept
per process, which is exact for a single worker process. The HTTP API's per-key limit uses the
same stores with a burst (:meth:`RateStore.take`).

The Redis client is the synchronous one: one short round trip per paced send, and only
integrations whose provider declares a rate make it (a few to a hundred sends a second).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import redis

from providers.base import RateLimitSettings, Settings
from providers.registry import AnyProvider

logger = logging.getLogger(__name__)

KEY_PREFIX = "dispatcher:rate:"
#: Sends an idle integration may make at once. One: a provider's "4 per second" is kept in any
#: window, not only on average.
BURST = 1


def send_rate(provider: type[AnyProvider], settings: Settings) -> float | None:
    """Sends per second an integration may make: its own setting where its provider takes one,
    else what the provider declares; ``None`` is no limit."""
    if isinstance(settings, RateLimitSettings) and settings.rate_limit_per_second is not None:
        return settings.rate_limit_per_second
    return provider.rate_limit_per_second


@dataclass(frozen=True)
class Grant:
    """One decision: ``reserved`` or not, the ``wait`` before the slot (or until it would have
    started), and the ``backlog``: seconds until the key is idle again (its TAT less now)."""

    reserved: bool
    wait: float
    backlog: float

    def remaining(self, rate: float, burst: int) -> int:
        """Slots that may still be taken at once (the ``RateLimit-Remaining`` of an API)."""
        interval, tolerance = _cell(rate, burst)
        return max(0, math.floor((tolerance - self.backlog) / interval + 1e-9) + 1)


class RateStore(Protocol):
    def reserve(self, key: str, rate: float, max_wait: float) -> tuple[bool, float]:
        """Reserve the next send slot of ``key`` if it starts within ``max_wait`` seconds.

        Returns ``(True, wait)`` when reserved: send after ``wait`` seconds; or ``(False,
        wait)`` when not: the slot would have started in ``wait`` seconds."""

    def take(self, key: str, rate: float, max_wait: float, burst: int = ...) -> Grant:
        """:meth:`reserve` with ``burst`` slots for an idle key, and the backlog left."""


#: KEYS[1]: the TAT key (microseconds). ARGV: emission interval, tolerance and the longest wait
#: accepted, all in microseconds, and optionally how many slots are wanted at once (1). Returns
#: {slots reserved (0 when the first would wait too long), wait before the first, backlog after
#: the last}, in microseconds. Several slots at once serve concurrent requests of one key with
#: one round trip (the HTTP API's limiter); as many are granted as fit within the wait accepted.
_GCRA_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local count = tonumber(ARGV[4] or '1')
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if wait > max_wait then return {0, wait, tat - now} end
local granted = math.min(count, math.floor((now + tolerance + max_wait - tat) / interval) + 1)
local next_tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat),
           'PX', math.ceil((next_tat - now) / 1000) + 1)
return {granted, wait, next_tat - now}
"""

MICROSECONDS = 1_000_000


def gcra_script() -> str:
    """The Lua script of the Redis stores, for a client of another kind (``redis.asyncio``)."""
    return _GCRA_SCRIPT


def gcra_arguments(rate: float, max_wait: float, burst: int = BURST, count: int = 1) -> list[int]:
    """The script's ARGV for one decision about ``count`` slots."""
    interval, tolerance = _cell(rate, burst)
    return [
        math.ceil(interval * MICROSECONDS),
        math.floor(tolerance * MICROSECONDS),
        math.floor(max_wait * MICROSECONDS),
        count,
    ]


def gcra_grant(answer: Any) -> Grant:
    """The script's answer about one slot as a :class:`Grant`."""
    reserved, wait, backlog = answer
    return Grant(bool(reserved), int(wait) / MICROSECONDS, int(backlog) / MICROSECONDS)


def gcra_grants(answer: Any, count: int, rate: float, burst: int) -> list[Grant]:
    """The script's answer about ``count`` slots: a :class:`Grant` for each, in order."""
    reserved = int(answer[0])
    wait, backlog = int(answer[1]) / MICROSECONDS, int(answer[2]) / MICROSECONDS
    interval, tolerance = _cell(rate, burst)
    grants = [
        Grant(
            True,
            max(0.0, backlog - (reserved - i) * interval - tolerance),
            backlog - (reserved - 1 - i) * interval,
        )
        for i in range(reserved)
    ]
    refused_wait = wait if reserved == 0 else max(0.0, backlog - tolerance)
    grants += [Grant(False, refused_wait, backlog)] * (count - reserved)
    return grants


def _cell(rate: float, burst: int = BURST) -> tuple[float, float]:
    """Emission interval and burst tolerance, in seconds."""
    interval = 1.0 / rate
    return interval, interval * (burst - 1)


class RedisRateStore:
    def __init__(self, client: Any, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        # EVALSHA, loading the script again if the server forgot it (a restart, SCRIPT FLUSH).
        self._script = client.register_script(_GCRA_SCRIPT)

    def reserve(self, key: str, rate: float, max_wait: float) -> tuple[bool, float]:
        grant = self.take(key, rate, max_wait)
        return grant.reserved, grant.wait

    def take(self, key: str, rate: float, max_wait: float, burst: int = BURST) -> Grant:
        answer = self._script(keys=[self.prefix + key], args=gcra_arguments(rate, max_wait, burst))
        return gcra_grant(answer)


class MemoryRateStore:
    """The same algorithm for one process; idle integrations are forgotten as it grows."""

    PRUNE_ABOVE = 1024

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str, rate: float, max_wait: float) -> tuple[bool, float]:
        grant = self.take(key, rate, max_wait)
        return grant.reserved, grant.wait

    def take(self, key: str, rate: float, max_wait: float, burst: int = BURST) -> Grant:
        interval, tolerance = _cell(rate, burst)
        with self._lock:
            now = time.monotonic()
            tat = max(self._tat.get(key, now), now)
            wait = max(0.0, tat - tolerance - now)
            if wait > max_wait:
                return Grant(False, wait, tat - now)
            if len(self._tat) >= self.PRUNE_ABOVE:
                self._tat = {k: v for k, v in self._tat.items() if v > now}
            self._tat[key] = tat + interval
            return Grant(True, wait, tat + interval - now)


@lru_cache(maxsize=1)
def local_rate_store() -> MemoryRateStore:
    """The pace of this process's integrations, kept from batch to batch."""
    return MemoryRateStore()


@dataclass(frozen=True)
class Deferred:
    """The integration's pace has no turn for this send in the batch: retry after ``delay``."""

    delay: float


class Pacer:
    """A batch's view of the shared pace: every send to a rate-limited integration takes its
    turn here, waiting on the event loop when the turn comes before the batch's deadline."""

    def __init__(self, store: RateStore, *, max_wait: float) -> None:
        self.store = store
        # Waits are bounded by the batch, not per send: sends that take their turn one after
        # the other would otherwise keep a batch (and its lease) going for as long as they last.
        self.deadline = time.monotonic() + max(0.0, max_wait)
        self._advisory = False

    async def turn(self, integration_id: uuid.UUID, rate: float | None) -> Deferred | None:
        """``None`` once the send may go; else when to retry it (nothing was reserved)."""
        if rate is None or self._advisory:
            return None
        allowed = max(0.0, self.deadline - time.monotonic())
        try:
            reserved, wait = self.store.reserve(str(integration_id), rate, allowed)
        except redis.RedisError as exc:
            logger.warning(
                "rate limit store unavailable (%s): this batch sends unpaced", type(exc).__name__
            )
            self._advisory = True
            return None
        if not reserved:
            return Deferred(wait)
        if wait > 0:
            await asyncio.sleep(wait)
        return None

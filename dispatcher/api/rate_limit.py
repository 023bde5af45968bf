"""A request rate per API key, shared by every API process through Redis.

The GCRA of the sending path (:mod:`dispatcher.sending.rate_limit`) with a burst: an idle key
may make ``DISPATCHER_API_RATE_LIMIT_BURST`` requests at once, then
``DISPATCHER_API_RATE_LIMIT_PER_SECOND``. A refused request reserves nothing and is answered 429
with ``Retry-After``; every answer carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (IETF draft ``RateLimit`` header fields). Without Redis (the embedded
default) the rate is kept per process. An unreachable Redis lets requests through (logged once
a minute): the limit protects the service, it must not take it down.

The decision is awaited on the server's event loop (``redis.asyncio``), not made in a worker
thread (a thread per request was the API's ceiling: the pool has 40, shared with every other
blocking call), and concurrent requests of one key share one round trip
(:class:`RedisApiRateStore`): a call per request was a fifth of the loop's time in a profile.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Protocol

import redis
import redis.asyncio as aioredis
from fastapi import Depends, Response

from dispatcher.api.auth import Caller, authenticate
from dispatcher.api.errors import TooManyRequestsError, retry_after
from dispatcher.config import get_settings
from dispatcher.sending.rate_limit import (
    Grant,
    MemoryRateStore,
    gcra_arguments,
    gcra_grants,
    gcra_script,
)

logger = logging.getLogger(__name__)

KEY_PREFIX = "dispatcher:api-rate:"
#: Seconds a decision may take before the request goes through unlimited.
TIMEOUT = 2.0
_warned_at = -math.inf


class ApiRateStore(Protocol):
    async def take(self, key: str, rate: float, burst: int) -> Grant:
        """Reserve a request of ``key`` now, or learn how long until it could be made."""


class RedisApiRateStore:
    """The GCRA script through ``redis.asyncio``, one round trip for many requests.

    While one decision about a key is on its way to Redis, the requests of that key that arrive
    wait, and the next call asks for all of their slots at once (the script grants as many as
    fit, in order), so a process makes about one call per key per round trip however many
    requests it serves. A client per event loop: a connection belongs to the loop that opened
    it (a test client runs its own).
    """

    def __init__(self, url: str, prefix: str = KEY_PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    async def take(self, key: str, rate: float, burst: int) -> Grant:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            # No socket_timeout: redis-py then wraps every send in asyncio.wait_for, a task per
            # command; one deadline for the whole call does the same job.
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=TIMEOUT)
            state = self._loops[loop] = _LoopState(client.register_script(gcra_script()))
        wanted = (key, rate, burst)
        waiting: asyncio.Future[Grant] = loop.create_future()
        state.waiting.setdefault(wanted, []).append(waiting)
        if wanted not in state.asking:
            state.asking.add(wanted)
            state.tasks.add(task := loop.create_task(self._ask(state, wanted)))
            task.add_done_callback(state.tasks.discard)
        return await waiting

    async def _ask(self, state: _LoopState, wanted: tuple[str, float, int]) -> None:
        key, rate, burst = wanted
        try:
            while waiting := state.waiting.pop(wanted, None):
                try:
                    async with asyncio.timeout(TIMEOUT):
                        answer = await state.script(
                            keys=[self.prefix + key],
                            args=gcra_arguments(rate, 0.0, burst, count=len(waiting)),
                        )
                    grants = gcra_grants(answer, len(waiting), rate, burst)
                except (redis.RedisError, OSError, TimeoutError) as exc:
                    for future in waiting:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for future, grant in zip(waiting, grants, strict=True):
                    if not future.done():
                        future.set_result(grant)
        finally:
            state.asking.discard(wanted)


@dataclass
class _LoopState:
    script: Any
    #: Requests waiting for the next call, by (key, rate, burst).
    waiting: dict[tuple[str, float, int], list[asyncio.Future[Grant]]] = field(default_factory=dict)
    #: Keys with a call on its way.
    asking: set[tuple[str, float, int]] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class LocalApiRateStore:
    """One process's rates (no Redis)."""

    def __init__(self) -> None:
        self._store = MemoryRateStore()

    async def take(self, key: str, rate: float, burst: int) -> Grant:
        return self._store.take(key, rate, 0.0, burst)


@lru_cache(maxsize=1)
def api_rate_store() -> ApiRateStore:
    url = get_settings().resolved_redis_url
    return RedisApiRateStore(url) if url is not None else LocalApiRateStore()


async def admit(caller: Caller) -> dict[str, str]:
    """The ``RateLimit-*`` headers of the caller's answer, once its key has a request left
    (else :class:`TooManyRequestsError` with ``Retry-After``); none when Redis is unreachable."""
    global _warned_at  # noqa: PLW0603 - one log line a minute per process
    settings = get_settings()
    rate, burst = settings.api_rate_limit_per_second, settings.api_rate_limit_burst
    try:
        grant = await api_rate_store().take(str(caller.key_id), rate, burst)
    except (redis.RedisError, OSError, TimeoutError) as exc:
        if time.monotonic() - _warned_at > 60:
            _warned_at = time.monotonic()
            logger.warning(
                "api rate limit store unavailable (%s): not limiting", type(exc).__name__
            )
        return {}
    headers = {
        "RateLimit-Limit": str(burst),
        "RateLimit-Remaining": str(grant.remaining(rate, burst)),
        "RateLimit-Reset": retry_after(grant.backlog),
    }
    if not grant.reserved:
        raise TooManyRequestsError(headers={**headers, "Retry-After": retry_after(grant.wait)})
    return headers


async def rate_limited(
    caller: Annotated[Caller, Depends(authenticate)], response: Response
) -> Caller:
    """The caller, once its key has a request left (else 429)."""
    response.headers.update(await admit(caller))
    return caller


#: What a resource handler takes to know its organisation: authenticated and within its rate.
CallerDep = Annotated[Caller, Depends(rate_limited)]

"""A request rate per API key, shared by every API process through Redis.

The GCRA stores of the sending path (:mod:`dispatcher.sending.rate_limit`) with a burst: an idle
key may make ``DISPATCHER_API_RATE_LIMIT_BURST`` requests at once, then
``DISPATCHER_API_RATE_LIMIT_PER_SECOND``. A refused request reserves nothing and is answered 429
with ``Retry-After``; every answer carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (IETF draft ``RateLimit`` header fields). Without Redis (the embedded
default) the rate is kept per process. An unreachable Redis lets requests through (logged once
a minute): the limit protects the service, it must not take it down.
"""

from __future__ import annotations

import logging
import math
import time
from functools import lru_cache
from typing import Annotated

import redis
from fastapi import Depends, Response

from dispatcher.api.auth import Caller, authenticate
from dispatcher.api.errors import TooManyRequestsError, retry_after
from dispatcher.config import get_settings
from dispatcher.sending.rate_limit import MemoryRateStore, RateStore, RedisRateStore

logger = logging.getLogger(__name__)

KEY_PREFIX = "dispatcher:api-rate:"
_warned_at = -math.inf


@lru_cache(maxsize=1)
def api_rate_store() -> RateStore:
    url = get_settings().resolved_redis_url
    if url is not None:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        return RedisRateStore(client, prefix=KEY_PREFIX)
    return MemoryRateStore()


def rate_limited(caller: Annotated[Caller, Depends(authenticate)], response: Response) -> Caller:
    """The caller, once its key has a request left (else 429)."""
    global _warned_at  # noqa: PLW0603 - one log line a minute per process
    settings = get_settings()
    rate, burst = settings.api_rate_limit_per_second, settings.api_rate_limit_burst
    try:
        grant = api_rate_store().take(str(caller.key_id), rate, 0.0, burst)
    except redis.RedisError as exc:
        if time.monotonic() - _warned_at > 60:
            _warned_at = time.monotonic()
            logger.warning(
                "api rate limit store unavailable (%s): not limiting", type(exc).__name__
            )
        return caller
    headers = {
        "RateLimit-Limit": str(burst),
        "RateLimit-Remaining": str(grant.remaining(rate, burst)),
        "RateLimit-Reset": retry_after(grant.backlog),
    }
    if not grant.reserved:
        raise TooManyRequestsError(headers={**headers, "Retry-After": retry_after(grant.wait)})
    response.headers.update(headers)
    return caller


#: What a resource handler takes to know its organisation: authenticated and within its rate.
CallerDep = Annotated[Caller, Depends(rate_limited)]

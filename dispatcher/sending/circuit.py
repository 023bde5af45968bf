"""A circuit breaker per integration, shared by every worker through Redis.

``threshold`` consecutive failures open the circuit for ``cooldown`` seconds: the integration is
skipped (fallback takes over) and its row is marked ``error``. After the cool-down the circuit is
half-open: the next send is the probe; a success closes it, a failure opens it again. A provider
that asks for a pause (``Retry-After``) holds the circuit open at least that long.

On the embedded default (no Redis) the state is per process, which is enough for one machine.

The breaker is advisory: :class:`AdvisoryCircuitStore` wraps the shared store so that, when Redis
is unreachable, every caller (a batch, the probe) goes on as if each circuit were closed, rather
than failing work whose messages may already be out.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Protocol

import redis

logger = logging.getLogger(__name__)

OPEN_PREFIX = "dispatcher:circuit:open:"
FAILURES_PREFIX = "dispatcher:circuit:failures:"


class CircuitStore(Protocol):
    def is_open(self, integration_id: str) -> bool: ...

    def open_many(self, integration_ids: list[str]) -> set[str]: ...

    def record_success(self, integration_id: str) -> bool:
        """Reset; True when the integration had been failing (a probe closed it)."""

    def record_failure(self, integration_id: str) -> bool:
        """Count a failure; True when the circuit is open after it (opened by this failure or
        by another worker's)."""

    def hold(self, integration_id: str, seconds: float) -> None:
        """Keep the circuit open for at least ``seconds`` from now (never shortens it)."""


#: Sets the open key to expire in ARGV[1] ms unless it already lives longer.
_HOLD_SCRIPT = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl ~= -1 and ttl < tonumber(ARGV[1]) then
    redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
"""


class RedisCircuitStore:
    def __init__(self, client: Any, *, threshold: int, cooldown: float) -> None:
        self.client = client
        self.threshold = threshold
        self.cooldown = cooldown

    def is_open(self, integration_id: str) -> bool:
        return bool(self.client.exists(OPEN_PREFIX + integration_id))

    def open_many(self, integration_ids: list[str]) -> set[str]:
        if not integration_ids:
            return set()
        pipeline = self.client.pipeline(transaction=False)
        for integration_id in integration_ids:
            pipeline.exists(OPEN_PREFIX + integration_id)
        return {
            i for i, is_open in zip(integration_ids, pipeline.execute(), strict=True) if is_open
        }

    def record_success(self, integration_id: str) -> bool:
        pipeline = self.client.pipeline(transaction=False)
        pipeline.getdel(FAILURES_PREFIX + integration_id)
        pipeline.delete(OPEN_PREFIX + integration_id)
        failures, _ = pipeline.execute()
        return failures is not None and int(failures) >= self.threshold

    def record_failure(self, integration_id: str) -> bool:
        key = FAILURES_PREFIX + integration_id
        pipeline = self.client.pipeline(transaction=False)
        pipeline.incr(key)
        pipeline.expire(key, int(max(60, self.cooldown * 10)))
        failures, _ = pipeline.execute()
        if int(failures) >= self.threshold:
            # Only the failure that sets the key starts the cool-down; every worker that fails
            # past the threshold learns that the circuit is open.
            self.client.set(
                OPEN_PREFIX + integration_id, "1", ex=max(1, round(self.cooldown)), nx=True
            )
            return True
        return False

    def hold(self, integration_id: str, seconds: float) -> None:
        self.client.eval(_HOLD_SCRIPT, 1, OPEN_PREFIX + integration_id, math.ceil(seconds * 1000))


class MemoryCircuitStore:
    def __init__(self, *, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_open(self, integration_id: str) -> bool:
        with self._lock:
            return self._open_until.get(integration_id, 0.0) > time.monotonic()

    def open_many(self, integration_ids: list[str]) -> set[str]:
        return {
            integration_id for integration_id in integration_ids if self.is_open(integration_id)
        }

    def record_success(self, integration_id: str) -> bool:
        with self._lock:
            failures = self._failures.pop(integration_id, 0)
            self._open_until.pop(integration_id, None)
        return failures >= self.threshold

    def record_failure(self, integration_id: str) -> bool:
        with self._lock:
            failures = self._failures.get(integration_id, 0) + 1
            self._failures[integration_id] = failures
            if failures < self.threshold:
                return False
            if self._open_until.get(integration_id, 0.0) <= time.monotonic():
                self._open_until[integration_id] = time.monotonic() + self.cooldown
        return True

    def hold(self, integration_id: str, seconds: float) -> None:
        with self._lock:
            until = time.monotonic() + seconds
            self._open_until[integration_id] = max(until, self._open_until.get(integration_id, 0.0))


class AdvisoryCircuitStore:
    """A circuit store whose failures are logged and taken as "closed, nothing recorded"."""

    def __init__(self, store: CircuitStore) -> None:
        self.store = store

    def _unavailable(self, exc: redis.RedisError) -> None:
        logger.warning(
            "circuit store unavailable (%s): circuits taken as closed", type(exc).__name__
        )

    def is_open(self, integration_id: str) -> bool:
        try:
            return self.store.is_open(integration_id)
        except redis.RedisError as exc:
            self._unavailable(exc)
            return False

    def open_many(self, integration_ids: list[str]) -> set[str]:
        try:
            return self.store.open_many(integration_ids)
        except redis.RedisError as exc:
            self._unavailable(exc)
            return set()

    def record_success(self, integration_id: str) -> bool:
        try:
            return self.store.record_success(integration_id)
        except redis.RedisError as exc:
            self._unavailable(exc)
            return False

    def record_failure(self, integration_id: str) -> bool:
        try:
            return self.store.record_failure(integration_id)
        except redis.RedisError as exc:
            self._unavailable(exc)
            return False

    def hold(self, integration_id: str, seconds: float) -> None:
        try:
            self.store.hold(integration_id, seconds)
        except redis.RedisError as exc:
            self._unavailable(exc)

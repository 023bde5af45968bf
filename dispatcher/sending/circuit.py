"""A circuit breaker per integration, shared by every worker through Redis.

``threshold`` consecutive failures open the circuit for ``cooldown`` seconds: the integration is
skipped (fallback takes over) and its row is marked ``error``. After the cool-down the circuit is
half-open: the next send is the probe; a success closes it, a failure opens it again.

On the embedded default (no Redis) the state is per process, which is enough for one machine.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

OPEN_PREFIX = "dispatcher:circuit:open:"
FAILURES_PREFIX = "dispatcher:circuit:failures:"


class CircuitStore(Protocol):
    def is_open(self, integration_id: str) -> bool: ...

    def open_many(self, integration_ids: list[str]) -> set[str]: ...

    def record_success(self, integration_id: str) -> bool:
        """Reset; True when the integration had been failing (a probe closed it)."""

    def record_failure(self, integration_id: str) -> bool:
        """Count a failure; True when this failure opened the circuit."""


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
            # Only the failure that sets the key reports the opening.
            return bool(
                self.client.set(
                    OPEN_PREFIX + integration_id, "1", ex=max(1, round(self.cooldown)), nx=True
                )
            )
        return False


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
            if (
                failures >= self.threshold
                and self._open_until.get(integration_id, 0.0) <= time.monotonic()
            ):
                self._open_until[integration_id] = time.monotonic() + self.cooldown
                return True
        return False

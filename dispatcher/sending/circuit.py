"""A circuit breaker per integration, and a provider's ``Retry-After`` hold, shared by every worker
through Redis.

Two states, kept apart on purpose:

* **Open** (failure-driven): ``threshold`` consecutive failures open the circuit for ``cooldown``
  seconds; the integration is skipped (fallback takes over) and its row is marked ``error``.
  After the cool-down the circuit is half-open: the next send is the probe; a success closes it,
  a failure opens it again. A success, even one that was in flight when the circuit opened,
  closes it: the integration answered.
* **Held** (the provider's word): an answer with a ``Retry-After`` holds the integration for that
  long, up to ``retry_after_cap``. No worker starts a request to a held integration until the
  hold ends: each batch reads the holds when it starts and again at most every
  :data:`HOLD_REFRESH` seconds while it sends, so a hold one worker records stops every other
  worker's new requests within that time (requests already in flight still arrive). A success
  never shortens a hold (rate limits usually hit only some requests: the others succeed), and
  a later, shorter ``Retry-After`` does not either. Deliveries of a held integration fall back
  to the next one, or, with none left, wait until the hold ends. A ``Retry-After`` beyond the
  cap holds for the cap and marks the integration ``error``; the beat probe (or the first send
  that succeeds) makes it ``active`` again once the hold has ended.

On the embedded default (no Redis) the state is per process, which is enough for one machine.

The breaker is advisory: :class:`AdvisoryCircuitStore` wraps the shared store so that, when Redis
is unreachable, every caller (a batch, the probe) goes on as if each circuit were closed and
nothing held, rather than failing work whose messages may already be out.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import redis

logger = logging.getLogger(__name__)

OPEN_PREFIX = "dispatcher:circuit:open:"
FAILURES_PREFIX = "dispatcher:circuit:failures:"
HOLD_PREFIX = "dispatcher:circuit:hold:"

#: Seconds a batch goes on with the holds it read before reading them again: one pipelined round
#: trip per batch at most this often, instead of one per send (a round trip costs about 70 us of
#: CPU on loopback and blocks the batch's event loop for twice that).
HOLD_REFRESH = 0.05


class CircuitStore(Protocol):
    def is_open(self, integration_id: str) -> bool: ...

    def open_many(self, integration_ids: list[str]) -> set[str]:
        """The integrations whose circuit failures opened (holds are not included)."""

    def held_many(self, integration_ids: list[str]) -> dict[str, float]:
        """Seconds left of each integration's hold; integrations not held are left out."""

    def record_success(self, integration_id: str) -> bool:
        """Reset the failures and close the circuit (never a hold); True when the integration
        had been failing (a probe closed it)."""

    def record_failure(self, integration_id: str) -> bool:
        """Count a failure; True when the circuit is open after it (opened by this failure or
        by another worker's)."""

    def hold(self, integration_id: str, seconds: float) -> None:
        """Hold the integration for at least ``seconds`` from now (never shortens a hold)."""


#: Sets the hold key to expire in ARGV[1] ms unless it already lives longer.
_HOLD_SCRIPT = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl ~= -1 and ttl < tonumber(ARGV[1]) then
    redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
"""


def _hold_milliseconds(seconds: float) -> int | None:
    """Whole milliseconds of a hold, or None when there is nothing (or nothing sane) to hold."""
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return math.ceil(seconds * 1000)


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

    def held_many(self, integration_ids: list[str]) -> dict[str, float]:
        if not integration_ids:
            return {}
        pipeline = self.client.pipeline(transaction=False)
        for integration_id in integration_ids:
            pipeline.pttl(HOLD_PREFIX + integration_id)
        left = zip(integration_ids, pipeline.execute(), strict=True)
        # -2: no hold; -1: a key without expiry, which no hold of ours is.
        return {i: int(ms) / 1000 for i, ms in left if int(ms) > 0}

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
        if (milliseconds := _hold_milliseconds(seconds)) is not None:
            self.client.eval(_HOLD_SCRIPT, 1, HOLD_PREFIX + integration_id, milliseconds)


class MemoryCircuitStore:
    def __init__(self, *, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}
        self._held_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_open(self, integration_id: str) -> bool:
        with self._lock:
            return self._open_until.get(integration_id, 0.0) > time.monotonic()

    def open_many(self, integration_ids: list[str]) -> set[str]:
        return {
            integration_id for integration_id in integration_ids if self.is_open(integration_id)
        }

    def held_many(self, integration_ids: list[str]) -> dict[str, float]:
        now = time.monotonic()
        with self._lock:
            until = {i: self._held_until.get(i, 0.0) for i in integration_ids}
        return {i: end - now for i, end in until.items() if end > now}

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
        if _hold_milliseconds(seconds) is None:
            return
        with self._lock:
            until = time.monotonic() + seconds
            self._held_until[integration_id] = max(until, self._held_until.get(integration_id, 0.0))


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

    def held_many(self, integration_ids: list[str]) -> dict[str, float]:
        try:
            return self.store.held_many(integration_ids)
        except redis.RedisError as exc:
            self._unavailable(exc)
            return {}

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


class CircuitView:
    """Circuit state as one batch sees it: read when the batch starts, updated as answers
    arrive, holds read again at most every :data:`HOLD_REFRESH` seconds.

    ``opened`` and ``closed`` are the integrations whose row status the batch turns to
    ``error`` and back to ``active`` when it finishes (in that order). An integration the batch
    held beyond the cap is never in ``closed``, whatever answer came after: a success that was in
    flight closes a circuit failures opened, never a hold.
    """

    def __init__(
        self,
        store: CircuitStore,
        integration_ids: Iterable[uuid.UUID],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._ids = list(integration_ids)
        self._clock = clock
        keys = [str(item) for item in self._ids]
        self.open_ids = {uuid.UUID(item) for item in store.open_many(keys)} if keys else set()
        self._held_until: dict[uuid.UUID, float] = {}
        self._read_at = -math.inf
        self.opened: set[uuid.UUID] = set()
        self.closed: set[uuid.UUID] = set()
        self._beyond_cap: set[uuid.UUID] = set()
        # Integrations whose failure count is known to be zero since their last success here.
        self._clean: set[uuid.UUID] = set()
        self._read_holds()

    def failure(self, integration_id: uuid.UUID) -> None:
        self._clean.discard(integration_id)
        if self.store.record_failure(str(integration_id)):
            self.open_ids.add(integration_id)
            self.opened.add(integration_id)

    def hold(self, integration_id: uuid.UUID, seconds: float, *, beyond_cap: bool) -> None:
        """The provider asked for a pause: no request to it from any worker for ``seconds``
        (already cut to the cap); ``beyond_cap``: it asked for longer, so its status shows it."""
        if seconds > 0 and math.isfinite(seconds):
            self.store.hold(str(integration_id), seconds)
            self._held_until[integration_id] = max(
                self._held_until.get(integration_id, -math.inf), self._clock() + seconds
            )
        if beyond_cap:
            self._beyond_cap.add(integration_id)
            self.opened.add(integration_id)
            self.closed.discard(integration_id)

    def success(self, integration_id: uuid.UUID, *, was_error: bool = False) -> None:
        """A send went through; ``was_error``: the batch read the integration in ``error``."""
        closes = integration_id not in self._beyond_cap
        if was_error and closes:
            self.closed.add(integration_id)
        # The shared store is reset on the first success after a failure, not on every send:
        # one round trip per integration per batch instead of one per message.
        if integration_id in self._clean:
            return
        self._clean.add(integration_id)
        if self.store.record_success(str(integration_id)) and closes:
            self.closed.add(integration_id)

    def held_for(self, integration_id: uuid.UUID) -> float | None:
        """Seconds left of the integration's hold, or None when it is not held."""
        now = self._clock()
        if now - self._read_at >= HOLD_REFRESH:
            self._read_holds()
        left = self._held_until.get(integration_id, -math.inf) - now
        return left if left > 0 else None

    def blocked(self, integration_id: uuid.UUID) -> bool:
        """No request may start: the circuit is open or the integration held."""
        return integration_id in self.open_ids or self.held_for(integration_id) is not None

    def _read_holds(self) -> None:
        self._read_at = now = self._clock()
        if not self._ids:
            return
        for key, left in self.store.held_many([str(item) for item in self._ids]).items():
            integration_id = uuid.UUID(key)
            self._held_until[integration_id] = max(
                self._held_until.get(integration_id, -math.inf), now + left
            )

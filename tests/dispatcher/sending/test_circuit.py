"""The shared circuit store on a real Redis: a ``Retry-After`` hold is a state of its own, which a
success (one in flight when the hold began, or any later) never lifts and a shorter hold never
shortens; failures open and a success closes the circuit as before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dispatcher.sending.circuit import (
    HOLD_PREFIX,
    HOLD_REFRESH,
    OPEN_PREFIX,
    AdvisoryCircuitStore,
    CircuitView,
    RedisCircuitStore,
)
from tests.conftest import free_port


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def store(client: redis.Redis) -> RedisCircuitStore:
    return RedisCircuitStore(client, threshold=2, cooldown=30.0)


def key() -> str:
    return str(uuid.uuid4())


def test_a_success_in_flight_does_not_clear_a_hold(
    store: RedisCircuitStore, client: redis.Redis
) -> None:
    held = key()
    store.record_success(held)  # a first send went through
    store.record_failure(held)  # the 429
    store.hold(held, 3600.0)
    assert store.record_success(held) is False  # a send that was in flight answers well
    assert 3599.0 < store.held_many([held])[held] <= 3600.0
    assert 3_599_000 < client.pttl(HOLD_PREFIX + held) <= 3_600_000
    # The next batch of any worker reads the hold: the integration gets no request.
    view = CircuitView(store, [uuid.UUID(held)])
    assert view.blocked(uuid.UUID(held))
    assert view.held_for(uuid.UUID(held)) is not None


def test_a_success_closes_a_circuit_failures_opened_but_leaves_its_hold(
    store: RedisCircuitStore,
) -> None:
    both = key()
    store.record_failure(both)
    assert store.record_failure(both) is True  # threshold 2: open
    store.hold(both, 60.0)
    assert store.open_many([both]) == {both}
    assert store.record_success(both) is True  # it had been failing: closed
    assert store.open_many([both]) == set()
    assert both in store.held_many([both])


def test_a_hold_is_never_shortened(store: RedisCircuitStore) -> None:
    held = key()
    store.hold(held, 600.0)
    store.hold(held, 5.0)
    assert store.held_many([held])[held] > 590.0
    store.hold(held, 1200.0)
    assert store.held_many([held])[held] > 1190.0


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan"), float("inf")])
def test_a_hold_of_nothing_sane_holds_nothing(
    store: RedisCircuitStore, client: redis.Redis, seconds: float
) -> None:
    held = key()
    store.hold(held, seconds)
    assert store.held_many([held]) == {}
    assert not client.exists(HOLD_PREFIX + held)


def test_a_hold_and_an_open_circuit_are_separate_keys(
    store: RedisCircuitStore, client: redis.Redis
) -> None:
    held = key()
    store.hold(held, 60.0)
    assert store.open_many([held]) == set()
    assert not client.exists(OPEN_PREFIX + held)
    assert store.held_many([held, key()]).keys() == {held}


def test_a_hold_another_worker_records_reaches_a_running_batch(
    store: RedisCircuitStore,
) -> None:
    integration_id = uuid.UUID(key())
    now = [0.0]
    view = CircuitView(store, [integration_id], clock=lambda: now[0])
    assert view.held_for(integration_id) is None
    store.hold(str(integration_id), 60.0)  # another worker met the 429
    # The batch goes on with the holds it read for HOLD_REFRESH seconds, then reads them again.
    now[0] = HOLD_REFRESH / 2
    assert not view.blocked(integration_id)
    now[0] = HOLD_REFRESH
    assert view.blocked(integration_id)


def test_an_unreachable_store_holds_nothing() -> None:
    unreachable = AdvisoryCircuitStore(
        RedisCircuitStore(
            redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0)), threshold=2, cooldown=30.0
        )
    )
    held = key()
    unreachable.hold(held, 60.0)
    assert unreachable.held_many([held]) == {}
    assert not CircuitView(unreachable, [uuid.UUID(held)]).blocked(uuid.UUID(held))

"""GCRA send pacing: exact against real Redis, shared by processes, deferring what cannot wait."""

from __future__ import annotations

import logging
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterator
from itertools import pairwise
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import pytest
import redis

from dispatcher.runtime.http import SendingRuntime
from dispatcher.sending.rate_limit import (
    BURST,
    Deferred,
    MemoryRateStore,
    Pacer,
    RateStore,
    RedisRateStore,
    send_rate,
)
from models import DeliveryStatus
from providers.fake import FakeHttpProvider, FakeHttpSettings
from providers.teams import TeamsProvider, TeamsSettings
from tests.dispatcher.sending.support import LIMITED_PROVIDERS, candidate, job, sender, sent_by


@pytest.fixture(params=["redis", "memory"])
def store(request: pytest.FixtureRequest) -> RateStore:
    if request.param == "memory":
        return MemoryRateStore()
    url: str = request.getfixturevalue("redis_url")
    return RedisRateStore(redis.Redis.from_url(url))


@pytest.fixture
def runtime() -> Iterator[SendingRuntime]:
    runtime = SendingRuntime(timeout=5.0, max_connections=10, url_allowlist=())
    yield runtime
    runtime.close()


@pytest.fixture(autouse=True)
def limited_providers(register_provider: Callable[..., None]) -> None:
    register_provider(*LIMITED_PROVIDERS)


def test_one_send_per_interval_is_granted_at_once(store: RateStore) -> None:
    key = uuid.uuid4().hex
    assert store.reserve(key, 10.0, 0.0) == (True, 0.0)
    granted, wait = store.reserve(key, 10.0, 0.0)
    assert not granted
    assert 0.0 < wait <= 0.1


def test_sends_reserve_successive_slots_within_the_wait_allowed(store: RateStore) -> None:
    key = uuid.uuid4().hex
    answers = [store.reserve(key, 4.0, 1.0) for _ in range(6)]
    assert [granted for granted, _ in answers] == [True] * 5 + [False]
    waits = [wait for _, wait in answers]
    assert waits[0] == 0.0
    # Each slot is one interval (0.25 s) after the one before, less the time the calls took.
    assert all(0.2 < later - earlier <= 0.25 for earlier, later in pairwise(waits))


def test_a_refused_send_reserves_nothing(store: RateStore) -> None:
    key = uuid.uuid4().hex
    store.reserve(key, 1.0, 0.0)
    for _ in range(5):
        assert not store.reserve(key, 1.0, 0.0)[0]
    granted, wait = store.reserve(key, 1.0, 5.0)
    assert granted
    assert wait <= 1.0  # the next slot, not the sixth


def test_idle_keys_expire_in_redis(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    key = uuid.uuid4().hex
    RedisRateStore(client).reserve(key, 4.0, 0.0)
    assert 0 < client.pttl(f"dispatcher:rate:{key}") <= 251


def _count_grants(url: str, key: str, window: float, ready: Barrier, out: Queue[int]) -> None:
    """Ask for the key's turn as fast as Redis answers, for ``window`` seconds from when every
    process is ready, and report how many were granted."""
    store = RedisRateStore(redis.Redis.from_url(url))
    ready.wait(timeout=60)
    stop, granted = time.monotonic() + window, 0
    while time.monotonic() < stop:
        granted += store.reserve(key, 4.0, 0.0)[0]
    out.put(granted)


def test_processes_sharing_an_integration_share_its_rate(redis_url: str) -> None:
    key, window, processes = uuid.uuid4().hex, 2.0, 4
    context = multiprocessing.get_context("spawn")
    ready, out = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_count_grants, args=(redis_url, key, window, ready, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    per_process = [out.get(timeout=90) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    # The windows start together (a barrier) and last as long, give or take a scheduling slice.
    assert sum(per_process) <= 4 * window + BURST
    # The rate was used, not refused: every slot of the window went to some process.
    assert sum(per_process) >= 4 * window - 1


def test_a_setting_replaces_the_providers_rate() -> None:
    assert send_rate(TeamsProvider, TeamsSettings()) == 4.0
    plain = FakeHttpSettings(url="http://127.0.0.1/x")
    assert send_rate(FakeHttpProvider, plain) is None
    paced = FakeHttpSettings(url="http://127.0.0.1/x", rate_limit_per_second=0.5)
    assert send_rate(FakeHttpProvider, paced) == 0.5


def test_a_turn_beyond_the_batch_is_deferred_with_its_delay(runtime: SendingRuntime) -> None:
    pacer = Pacer(MemoryRateStore(), max_wait=0.2)
    integration = uuid.uuid4()
    assert runtime.run(pacer.turn(integration, 1.0)) is None
    deferred = runtime.run(pacer.turn(integration, 1.0))
    assert isinstance(deferred, Deferred)
    assert 0.2 < deferred.delay <= 1.0
    assert runtime.run(pacer.turn(integration, None)) is None  # no limit, no turn


def test_the_pacer_is_advisory_when_redis_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    pacer = Pacer(RedisRateStore(unreachable), max_wait=1.0)
    runtime = SendingRuntime(timeout=1.0, max_connections=1, url_allowlist=())
    try:
        with caplog.at_level(logging.WARNING, logger="dispatcher.sending.rate_limit"):
            answers = [runtime.run(pacer.turn(uuid.uuid4(), 1.0)) for _ in range(3)]
    finally:
        runtime.close()
    assert answers == [None, None, None]
    assert [r.getMessage() for r in caplog.records] == [
        "rate limit store unavailable (ConnectionError): this batch sends unpaced"
    ]


def test_sends_within_the_batch_wait_their_turn_and_all_go(runtime: SendingRuntime) -> None:
    paced = candidate("test_paced")  # 2 per second
    work = [job([paced]) for _ in range(3)]
    outcomes = runtime.run(sender(runtime, max_rate_wait=5.0).send_all(work))
    assert [o.status for o in outcomes.values()] == [DeliveryStatus.SENT] * 3
    assert len(sent_by(runtime, "test_paced")) == 3


def test_sends_whose_turn_is_beyond_the_batch_are_retried_without_an_attempt(
    runtime: SendingRuntime,
) -> None:
    paced, fallback = candidate("test_paced"), candidate("test_roomy")
    work = [job([paced, fallback]) for _ in range(3)]
    outcomes = runtime.run(sender(runtime, max_rate_wait=0.0).send_all(work))
    statuses = sorted(o.status.value for o in outcomes.values())
    assert statuses == ["retrying", "retrying", "sent"]
    for outcome in outcomes.values():
        if outcome.status is DeliveryStatus.RETRYING:
            assert outcome.attempts == []
            assert outcome.delay is not None and 0.0 < outcome.delay <= 1.0
            assert outcome.reason == "test_paced: waiting for the integration's rate limit"
    assert len(sent_by(runtime, "test_paced")) == 1
    assert sent_by(runtime, "test_roomy") == []  # the fallback is not burned for a pace

"""The per-key rate limit, shared through Redis: 429 with Retry-After and RateLimit headers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
import redis
from fastapi.testclient import TestClient

from dispatcher.api.keys import create_key
from dispatcher.api.rate_limit import KEY_PREFIX, RedisApiRateStore, api_rate_store
from dispatcher.sending.rate_limit import Grant, MemoryRateStore, RedisRateStore
from tests.conftest import free_port
from tests.dispatcher.api.conftest import Keyed

CANCEL = "/v1/events/trigger/tx"


@pytest.fixture
def slow_rate(settings_env: Callable[..., None]) -> None:
    settings_env(api_rate_limit_per_second=0.01, api_rate_limit_burst=3)


@pytest.mark.usefixtures("slow_rate")
def test_a_key_over_its_burst_gets_429_with_retry_after(client: TestClient, keyed: Keyed) -> None:
    answers = [client.delete(CANCEL, headers=keyed.headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["RateLimit-Limit"] == "3" for a in answers)
    refused = answers[-1]
    assert 1 <= int(refused.headers["Retry-After"]) <= 100
    assert refused.json()["statusCode"] == 429


@pytest.mark.usefixtures("slow_rate")
def test_keys_have_rates_of_their_own(client: TestClient, keyed: Keyed) -> None:
    for _ in range(3):
        client.delete(CANCEL, headers=keyed.headers)
    assert client.delete(CANCEL, headers=keyed.headers).status_code == 429
    other = create_key(keyed.organisation_id, "another").key
    answer = client.delete(CANCEL, headers={"Authorization": f"ApiKey {other}"})
    assert answer.status_code == 200


def test_memory_store_grants_the_burst_then_refuses() -> None:
    store = MemoryRateStore()
    key = uuid.uuid4().hex
    grants = [store.take(key, 1.0, 0.0, burst=5) for _ in range(6)]
    assert [g.reserved for g in grants] == [True] * 5 + [False]
    assert [g.remaining(1.0, 5) for g in grants[:5]] == [4, 3, 2, 1, 0]
    assert 0 < grants[-1].wait <= 1.0


def test_an_unreachable_rate_store_lets_requests_through(
    settings_env: Callable[..., None], client: TestClient, keyed: Keyed
) -> None:
    settings_env(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    api_rate_store.cache_clear()
    answer = client.delete(CANCEL, headers=keyed.headers)
    assert answer.status_code == 200
    assert "RateLimit-Remaining" not in answer.headers


def test_concurrent_requests_of_a_key_share_calls_and_get_the_burst_in_order(
    redis_url: str,
) -> None:
    store = RedisApiRateStore(redis_url)
    key = uuid.uuid4().hex

    async def many() -> list[Grant]:
        return await asyncio.gather(*(store.take(key, 1.0, 5) for _ in range(12)))

    grants = asyncio.run(many())
    assert [g.reserved for g in grants] == [True] * 5 + [False] * 7
    assert [g.remaining(1.0, 5) for g in grants[:5]] == [4, 3, 2, 1, 0]
    assert all(0 < g.wait <= 1.0 for g in grants[5:])
    # The refused ones reserved nothing, and the key stays spent.
    assert asyncio.run(store.take(key, 1.0, 5)).reserved is False


def test_slots_asked_together_match_slots_asked_one_by_one(redis_url: str) -> None:
    together, alone = (
        RedisApiRateStore(redis_url),
        RedisRateStore(redis.Redis.from_url(redis_url), prefix=KEY_PREFIX),
    )
    key_together, key_alone = uuid.uuid4().hex, uuid.uuid4().hex

    async def asked_together() -> list[Grant]:
        return await asyncio.gather(*(together.take(key_together, 2.0, 3) for _ in range(5)))

    grouped = asyncio.run(asked_together())
    single = [alone.take(key_alone, 2.0, 0.0, burst=3) for _ in range(5)]
    assert [g.reserved for g in grouped] == [g.reserved for g in single]
    assert [g.remaining(2.0, 3) for g in grouped] == [g.remaining(2.0, 3) for g in single]
    for mine, theirs in zip(grouped, single, strict=True):
        assert abs(mine.backlog - theirs.backlog) < 0.05
        assert abs(mine.wait - theirs.wait) < 0.05

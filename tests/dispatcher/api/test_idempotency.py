"""The idempotency stores: a claim, the answer kept, a release after an error."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from dispatcher.api.idempotency import (
    IdempotencyStore,
    MemoryIdempotencyStore,
    RedisIdempotencyStore,
    Stored,
)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> IdempotencyStore:
    if request.param == "memory":
        return MemoryIdempotencyStore()
    return RedisIdempotencyStore(request.getfixturevalue("redis_url"))


def test_claim_keep_and_release(store: IdempotencyStore) -> None:
    async def scenario() -> None:
        key = uuid.uuid4().hex
        assert await store.claim(key, "fp") is None
        held = await store.claim(key, "fp")
        assert held == Stored("fp")
        await store.finish(key, Stored("fp", 201, '{"data": 1}'), ttl=60)
        assert await store.claim(key, "other") == Stored("fp", 201, '{"data": 1}')
        await store.release(key)
        assert await store.claim(key, "other") is None

    asyncio.run(scenario())


def test_answers_expire_after_their_ttl() -> None:
    async def scenario() -> None:
        store = MemoryIdempotencyStore()
        await store.finish("k", Stored("fp", 200, "{}"), ttl=0.01)
        await asyncio.sleep(0.05)
        assert await store.get("k") is None

    asyncio.run(scenario())

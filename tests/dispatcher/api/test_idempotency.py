"""The idempotency stores (a claim, the answer kept, a release after an error) and the middleware:
a repeat waits for the first answer, never 409; an unreachable store is no outage."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from dispatcher.api.idempotency import (
    Idempotency,
    IdempotencyStore,
    MemoryIdempotencyStore,
    RedisIdempotencyStore,
    Stored,
)
from tests.conftest import free_port


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


def counting_app(store: IdempotencyStore, release: asyncio.Event, calls: list[int]) -> Idempotency:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(1)
        await release.wait()
        await JSONResponse({"data": len(calls)}, status_code=201)(scope, receive, send)

    return Idempotency(app, store, ttl=60)


def test_a_repeat_while_the_first_is_answered_waits_and_gets_its_answer() -> None:
    async def scenario() -> list[httpx.Response]:
        release, calls = asyncio.Event(), []
        app = counting_app(MemoryIdempotencyStore(), release, calls)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            headers = {"Idempotency-Key": "k-1"}
            first = asyncio.create_task(client.post("/x", json={"a": 1}, headers=headers))
            second = asyncio.create_task(client.post("/x", json={"a": 1}, headers=headers))
            await asyncio.sleep(0.2)
            release.set()
            answers = [await first, await second]
        assert calls == [1]
        return answers

    first, second = asyncio.run(scenario())
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() == {"data": 1}
    assert "idempotency-replayed" not in first.headers
    assert second.headers["idempotency-replayed"] == "true"


def test_an_overlong_key_is_422_naming_the_header() -> None:
    async def scenario() -> httpx.Response:
        release = asyncio.Event()
        release.set()
        app = counting_app(MemoryIdempotencyStore(), release, [])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.post("/x", json={}, headers={"Idempotency-Key": "k" * 300})

    answer = asyncio.run(scenario())
    assert answer.status_code == 422
    assert set(answer.json()["errors"]) == {"idempotency-key"}


def test_an_unreachable_store_lets_the_request_through() -> None:
    async def scenario() -> httpx.Response:
        release, calls = asyncio.Event(), []
        release.set()
        store = RedisIdempotencyStore(f"redis://127.0.0.1:{free_port()}/0")
        transport = httpx.ASGITransport(app=counting_app(store, release, calls))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.post("/x", json={}, headers={"Idempotency-Key": "k"})

    assert asyncio.run(scenario()).status_code == 201

"""``Idempotency-Key`` on POST: the first successful answer is replayed for 24 hours.

Novu's SDKs send a random key on every request and reuse it when they retry one (after a
timeout, a 5xx, a 429), so a retry of a request that did go through gets the first answer
again instead of doing it twice. Keys are scoped by the credential that sent them (a digest of
the ``Authorization`` header), so callers cannot replay each other's answers.

* Same key, same request (method, path, query, body): the stored answer, with
  ``Idempotency-Replayed: true``.
* Same key, another request: 422 naming ``idempotency-key``.
* Same key while the first is still being answered: waited for (a few seconds), then replayed;
  if it is still running, 503 with ``Retry-After`` (never 409: the SDKs retry 409s for hours).
* Only 2xx answers are kept; after an error the key may be used again (a 4xx is answered the
  same way again anyway, and a 5xx must be retryable).

Stored in Redis (``SET NX`` then the answer, with a TTL) so that every API process sees the
same keys; without Redis (the embedded default) per process. An unreachable Redis lets the
request through unprotected (logged): producers' own ``transactionId`` still deduplicates
triggers, and a trigger sent with an idempotency key but no ``transactionId`` gets one derived
from the key (see the events router).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import redis
import redis.asyncio as aioredis
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.api.body_limits import replay
from dispatcher.api.errors import ServiceUnavailableError, UnprocessableError, api_error_response

logger = logging.getLogger(__name__)

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255
#: Seconds a claim lasts while its request is answered (a process killed mid-request frees
#: the key after this).
PENDING_TTL = 60.0
#: How long a repeat waits for the first request's answer, and how often it looks.
WAIT_FOR_FIRST = 5.0
POLL_INTERVAL = 0.05
KEY_PREFIX = "dispatcher:idempotency:"


@dataclass(frozen=True)
class Stored:
    fingerprint: str
    #: None while the first request is being answered.
    status: int | None = None
    body: str = ""
    content_type: str = "application/json"

    def dumps(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def loads(cls, raw: str | bytes) -> Stored:
        return cls(**json.loads(raw))


class IdempotencyStore(Protocol):
    async def claim(self, key: str, fingerprint: str) -> Stored | None:
        """Claim ``key`` for a new request (``None``), or answer what holds it."""

    async def finish(self, key: str, answer: Stored, ttl: float) -> None: ...

    async def release(self, key: str) -> None: ...

    async def get(self, key: str) -> Stored | None: ...


class RedisIdempotencyStore:
    def __init__(self, url: str) -> None:
        self.client = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    async def claim(self, key: str, fingerprint: str) -> Stored | None:
        name = KEY_PREFIX + key
        if await self.client.set(name, Stored(fingerprint).dumps(), nx=True, px=_ms(PENDING_TTL)):
            return None
        held = await self.get(key)
        return held if held is not None else await self.claim(key, fingerprint)

    async def finish(self, key: str, answer: Stored, ttl: float) -> None:
        await self.client.set(KEY_PREFIX + key, answer.dumps(), px=_ms(ttl))

    async def release(self, key: str) -> None:
        await self.client.delete(KEY_PREFIX + key)

    async def get(self, key: str) -> Stored | None:
        raw = await self.client.get(KEY_PREFIX + key)
        return None if raw is None else Stored.loads(raw)


class MemoryIdempotencyStore:
    """One process's keys; expired ones are dropped as it grows."""

    PRUNE_ABOVE = 10_000

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, Stored]] = {}

    async def claim(self, key: str, fingerprint: str) -> Stored | None:
        held = await self.get(key)
        if held is not None:
            return held
        if len(self._items) >= self.PRUNE_ABOVE:
            now = time.monotonic()
            self._items = {k: v for k, v in self._items.items() if v[0] > now}
        self._items[key] = (time.monotonic() + PENDING_TTL, Stored(fingerprint))
        return None

    async def finish(self, key: str, answer: Stored, ttl: float) -> None:
        self._items[key] = (time.monotonic() + ttl, answer)

    async def release(self, key: str) -> None:
        self._items.pop(key, None)

    async def get(self, key: str) -> Stored | None:
        item = self._items.get(key)
        if item is None or item[0] <= time.monotonic():
            return None
        return item[1]


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def request_fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode()):
        digest.update(part.encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


def scoped_key(headers: Headers, key: str) -> str:
    """The stored key: the credential's digest and the caller's key."""
    credential = hashlib.sha256(headers.get("authorization", "").encode()).hexdigest()
    return f"{credential}:{hashlib.sha256(key.encode()).hexdigest()}"


class Idempotency:
    def __init__(self, app: ASGIApp, store: IdempotencyStore, ttl: float) -> None:
        self.app = app
        self.store = store
        self.ttl = ttl
        self._warned_at = -float("inf")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        key = headers.get(HEADER) if headers is not None else None
        if headers is None or scope["method"] != "POST" or not key:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if len(key) > MAX_KEY_LENGTH:
            error = UnprocessableError({HEADER: [f"longer than {MAX_KEY_LENGTH} characters"]})
            await api_error_response(error, path)(scope, receive, send)
            return
        body = await _read(receive)
        fingerprint = request_fingerprint(scope, body)
        stored_key = scoped_key(headers, key)
        try:
            held = await self._claim(stored_key, fingerprint)
        except redis.RedisError as exc:
            self._warn(exc)
            await self.app(scope, replay(body, receive), send)
            return
        if held is None:
            await self._answer_first(scope, replay(body, receive), send, stored_key, fingerprint)
        elif held.fingerprint != fingerprint:
            error = UnprocessableError(
                {HEADER: ["already used for a different request"]},
                "this Idempotency-Key was used for a different request",
            )
            await api_error_response(error, path)(scope, receive, send)
        elif held.status is None:
            busy = ServiceUnavailableError(
                "the first request with this Idempotency-Key is still being answered",
                headers={"Retry-After": "1"},
            )
            await api_error_response(busy, path)(scope, receive, send)
        else:
            await _send_stored(send, held)

    async def _claim(self, key: str, fingerprint: str) -> Stored | None:
        """Claim the key, waiting a little while the same request holds it unanswered."""
        deadline = time.monotonic() + WAIT_FOR_FIRST
        while True:
            held = await self.store.claim(key, fingerprint)
            if (
                held is None
                or held.status is not None
                or held.fingerprint != fingerprint
                or time.monotonic() >= deadline
            ):
                return held
            await asyncio.sleep(POLL_INTERVAL)

    async def _answer_first(
        self, scope: Scope, receive: Receive, send: Send, key: str, fingerprint: str
    ) -> None:
        status = 500
        content_type = "application/json"
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = int(message["status"])
                content_type = Headers(raw=message.get("headers", [])).get(
                    "content-type", content_type
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            await self._keep(key, fingerprint, status, content_type, b"".join(chunks))

    async def _keep(
        self, key: str, fingerprint: str, status: int, content_type: str, body: bytes
    ) -> None:
        try:
            if 200 <= status < 300:
                answer = Stored(fingerprint, status, body.decode("utf-8"), content_type)
                await self.store.finish(key, answer, self.ttl)
            else:
                await self.store.release(key)
        except (redis.RedisError, UnicodeDecodeError) as exc:
            self._warn(exc)

    def _warn(self, exc: Exception) -> None:
        if time.monotonic() - self._warned_at > 60:
            self._warned_at = time.monotonic()
            logger.warning("idempotency store unavailable (%s): keys not kept", type(exc).__name__)


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_stored(send: Send, stored: Stored) -> None:
    body = stored.body.encode("utf-8")
    raw_headers: list[tuple[bytes, bytes]] = [
        (b"content-type", stored.content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        (b"idempotency-replayed", b"true"),
    ]
    await send({"type": "http.response.start", "status": stored.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def build_store(redis_url: str | None) -> IdempotencyStore:
    return RedisIdempotencyStore(redis_url) if redis_url else MemoryIdempotencyStore()


__all__ = ["HEADER", "Idempotency", "IdempotencyStore", "Stored", "build_store"]

"""Who is calling: the organisation of the API key in ``Authorization``.

``Authorization: ApiKey <key>`` (Novu's scheme, what its SDKs send) or ``Bearer <key>``. The
key is looked up by its SHA-256 digest (an index lookup that reveals nothing about near
misses) and the digests compared with :func:`hmac.compare_digest`; a missing, malformed,
unknown or revoked key is the same 401. Every handler takes the organisation id from
:class:`Caller`, never from the request.

A key looked up is trusted by its process for ``DISPATCHER_API_KEY_CACHE_SECONDS`` (5 s), so most
requests cost no database round trip (one per request was the API's first ceiling: every
request held a pool thread and a connection for it). ``last_used_at`` is written at most once a
minute per key and process (and not at all while a write from another process is recent).
When a key's entry lapses while many of its requests are in flight, one of them looks it up and
the others wait for that answer (one lookup, not one per request in the server's thread pool).
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader
from sqlalchemy import or_, select, update

from dispatcher.api.errors import UnauthorizedError
from dispatcher.api.keys import KnownKey, digest, known_keys
from dispatcher.config import get_settings
from dispatcher.runtime.resources import database
from models import ApiKey
from models.types import utcnow

SCHEMES = ("apikey", "bearer")
#: Seconds between two writes of one key's ``last_used_at``.
LAST_USED_RESOLUTION = 60.0
MAX_KEY_LENGTH = 200

#: Declares the header in the OpenAPI document; parsing is ours.
authorization_header = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    description="`ApiKey <key>` (as Novu's SDKs send it) or `Bearer <key>`",
)


@dataclass(frozen=True)
class Caller:
    organisation_id: uuid.UUID
    key_id: uuid.UUID


def presented_key(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() not in SCHEMES or not key or len(key) > MAX_KEY_LENGTH or " " in key:
        return None
    return key


class LastUsed:
    """When this process last wrote each key's ``last_used_at``."""

    def __init__(self, resolution: float = LAST_USED_RESOLUTION) -> None:
        self.resolution = resolution
        self._written: dict[uuid.UUID, float] = {}
        self._lock = threading.Lock()

    def due(self, key_id: uuid.UUID) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._written.get(key_id, -self.resolution) < self.resolution:
                return False
            self._written[key_id] = now
            return True

    def write(self, key_id: uuid.UUID) -> None:
        now = utcnow()
        recent = now - timedelta(seconds=self.resolution)
        with database().transaction() as session:
            session.execute(
                update(ApiKey)
                .where(
                    ApiKey.id == key_id,
                    or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < recent),
                )
                .values(last_used_at=now)
            )


last_used = LastUsed()


async def authenticate(header: Annotated[str | None, Depends(authorization_header)]) -> Caller:
    key = presented_key(header)
    if key is None:
        raise UnauthorizedError()
    wanted = digest(key)
    ttl = get_settings().api_key_cache_seconds
    known = known_keys.get(wanted, ttl) if ttl > 0 else None
    if known is None:
        known = await _shared_look_up(wanted)
        if known is None:
            raise UnauthorizedError()
        known_keys.put(wanted, known)
    if known.revoked:
        raise UnauthorizedError()
    if last_used.due(known.id):
        await run_in_threadpool(last_used.write, known.id)
    return Caller(known.organisation_id, known.id)


#: The lookups on their way, by event loop and digest.
_looking_up: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, asyncio.Task[KnownKey | None]]
] = weakref.WeakKeyDictionary()


async def _shared_look_up(wanted: str) -> KnownKey | None:
    on_loop = _looking_up.setdefault(asyncio.get_running_loop(), {})
    task = on_loop.get(wanted)
    if task is None:
        task = on_loop[wanted] = asyncio.ensure_future(run_in_threadpool(_look_up, wanted))
        task.add_done_callback(lambda _: on_loop.pop(wanted, None))
    # Shielded: a caller that goes away does not cancel the others' lookup.
    return await asyncio.shield(task)


def _look_up(wanted: str) -> KnownKey | None:
    with database().session() as session:
        row = session.execute(
            select(ApiKey.id, ApiKey.organisation_id, ApiKey.digest, ApiKey.revoked_at).where(
                ApiKey.digest == wanted
            )
        ).first()
    if row is None or not hmac.compare_digest(row.digest, wanted):
        return None
    return KnownKey(row.id, row.organisation_id, revoked=row.revoked_at is not None)

"""Organisation API keys: issued once, stored as a SHA-256 digest, revoked by id or prefix.

A key is ``nv_`` and 43 URL-safe characters (32 random bytes). Only its digest is stored, and
its first :data:`PREFIX_LENGTH` characters, which lists show so that keys can be told apart.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update

from dispatcher.runtime.resources import database
from models import ApiKey, Organisation
from models.types import utcnow

KEY_MARK = "nv_"
PREFIX_LENGTH = 10


@dataclass(frozen=True)
class IssuedKey:
    id: uuid.UUID
    #: The key itself: shown once, never stored.
    key: str
    prefix: str


@dataclass(frozen=True)
class KeyView:
    id: uuid.UUID
    organisation_id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KnownKeys:
    """Keys this process has looked up, by digest, for a few seconds
    (``DISPATCHER_API_KEY_CACHE_SECONDS``): authentication then costs no database round trip
    on most requests. A revoked key is remembered as revoked; unknown digests are never kept
    (so guessing keys fills nothing). Revoking in this process forgets everything at once."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, KnownKey]] = {}
        self._lock = threading.Lock()

    def get(self, key_digest: str, ttl: float) -> KnownKey | None:
        entry = self._entries.get(key_digest)
        if entry is None or time.monotonic() - entry[0] >= ttl:
            return None
        return entry[1]

    def put(self, key_digest: str, known: KnownKey) -> None:
        with self._lock:
            if len(self._entries) >= MAX_KNOWN_KEYS:
                self._entries.clear()
            self._entries[key_digest] = (time.monotonic(), known)

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass(frozen=True)
class KnownKey:
    id: uuid.UUID
    organisation_id: uuid.UUID
    revoked: bool


#: Keys one process remembers at most; beyond, it starts again (a bound, not a policy).
MAX_KNOWN_KEYS = 10_000
known_keys = KnownKeys()


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_key(organisation_id: uuid.UUID, name: str) -> IssuedKey:
    name = name.strip()
    if not name:
        raise ValueError("name: must not be empty")
    key = KEY_MARK + secrets.token_urlsafe(32)
    with database().transaction() as session:
        if session.get(Organisation, organisation_id) is None:
            raise ValueError(f"org: no organisation {organisation_id}")
        row = ApiKey(
            organisation_id=organisation_id, name=name[:200],
            prefix=key[:PREFIX_LENGTH], digest=digest(key),
        )  # fmt: skip
        session.add(row)
        session.flush()
        return IssuedKey(row.id, key, row.prefix)


def list_keys(organisation_id: uuid.UUID | None = None) -> list[KeyView]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if organisation_id is not None:
        query = query.where(ApiKey.organisation_id == organisation_id)
    with database().session() as session:
        return [
            KeyView(
                row.id,
                row.organisation_id,
                row.name,
                row.prefix,
                row.created_at,
                row.last_used_at,
                row.revoked_at,
            )
            for row in session.scalars(query)
        ]


def revoke_key(organisation_id: uuid.UUID, key: str) -> int:
    """Revoke the organisation's key named by its id or its prefix; answers how many were."""
    conditions = [ApiKey.prefix == key]
    with contextlib.suppress(ValueError):
        conditions.append(ApiKey.id == uuid.UUID(key))
    with database().transaction() as session:
        revoked = session.scalars(
            update(ApiKey)
            .where(
                ApiKey.organisation_id == organisation_id,
                ApiKey.revoked_at.is_(None),
                or_(*conditions),
            )
            .values(revoked_at=utcnow())
            .returning(ApiKey.id)
        ).all()
    known_keys.forget()
    return len(revoked)

"""Column types shared by the tables: UTC timestamps, portable JSON, encrypted JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator

from models.crypto import KeyRing

JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column; attach a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EncryptedJSON(TypeDecorator[dict[str, Any]]):
    """A JSON object stored as a Fernet token: the raw column never holds the plaintext."""

    impl = Text
    cache_ok = True

    def __init__(self, key_ring: KeyRing) -> None:
        super().__init__()
        self.key_ring = key_ring

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self.key_ring.encrypt(json.dumps(value, separators=(",", ":")).encode("utf-8"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> dict[str, Any] | None:
        if value is None:
            return None
        decoded: dict[str, Any] = json.loads(self.key_ring.decrypt(value))
        return decoded

    def __repr__(self) -> str:
        return "EncryptedJSON()"

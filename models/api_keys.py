"""Organisation API keys of the HTTP API: only a digest of each key is stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Row, Tenant


class ApiKey(Row, Tenant, Base):
    """A key reaches its organisation's rows only.

    ``digest`` is the SHA-256 of the key (hex): keys are 32 random bytes, so a fast hash is as
    good as a slow one against guessing, and the lookup by digest needs no per-key salt.
    ``prefix`` is the key's first characters, for telling keys apart in lists.
    """

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

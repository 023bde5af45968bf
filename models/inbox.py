"""The browser inbox's settings per organisation: its public identifier, its secret, its origins.

The application identifier is public (it is in every page that shows the inbox); the secret is
not: the application's server signs subscriber ids with it (``subscriberHash``), so a browser
can open only the inbox of the subscriber its page was given. The secrets are stored like
integration credentials (encrypted, :class:`~models.types.EncryptedJSON`): ``{"current": ...,
"previous": ..., "previous_until": ISO time}``; the previous one is accepted until then, so a
rotation does not log out every open page at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Mutable, Row, Tenant
from models.crypto import credential_keys
from models.types import EncryptedJSON


class InboxSettings(Row, Mutable, Tenant, Base):
    __tablename__ = "inbox_settings"
    __table_args__ = (UniqueConstraint("organisation_id"),)

    #: Public: what ``@novu/js`` sends as ``applicationIdentifier``.
    application_identifier: Mapped[str] = mapped_column(String(64), unique=True)
    secrets: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON(credential_keys))
    #: Origins (``https://app.example.com``) whose pages may call the inbox routes.
    cors_origins: Mapped[list[Any]] = mapped_column(default=list)

"""An organisation's provider integrations, channels bound to them, and grants of use."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Mutable, Row, Tenant, enum_column
from models.crypto import credential_keys
from models.types import EncryptedJSON


class ChannelType(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    CHAT = "chat"
    PUSH = "push"
    WEBHOOK = "webhook"
    IN_APP = "in_app"


class IntegrationStatus(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    ERROR = "error"


class ResourceType(enum.StrEnum):
    TOOL = "tool"
    INTEGRATION = "integration"


class GranteeType(enum.StrEnum):
    GROUP = "group"
    USER = "user"
    AGENT = "agent"


class Integration(Row, Mutable, Tenant, Base):
    __tablename__ = "integrations"
    __table_args__ = (
        # At most one primary integration per organisation, environment and channel.
        Index(
            "uq_integrations_primary_per_channel",
            "organisation_id",
            "environment",
            "channel_type",
            unique=True,
            sqlite_where=text("is_primary"),
            postgresql_where=text("is_primary"),
        ),
        Index("ix_integrations_resolution", "organisation_id", "channel_type", "status"),
    )

    name: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(50), default="production")
    provider: Mapped[str] = mapped_column(String(100))
    channel_type: Mapped[ChannelType] = mapped_column(enum_column(ChannelType, "channel_type"))
    credentials: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON(credential_keys))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[IntegrationStatus] = mapped_column(
        enum_column(IntegrationStatus, "integration_status"), default=IntegrationStatus.ACTIVE
    )
    is_primary: Mapped[bool] = mapped_column(default=False)
    priority: Mapped[int] = mapped_column(default=0)
    conditions: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    credentials_rotated_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return (
            f"Integration(id={self.id!s}, provider={self.provider!r}, "
            f"channel_type={self.channel_type!s}, status={self.status!s})"
        )


class Channel(Row, Mutable, Tenant, Base):
    """A named destination of a channel type, optionally pinned to one integration."""

    __tablename__ = "channels"

    name: Mapped[str] = mapped_column(String(200))
    channel_type: Mapped[ChannelType] = mapped_column(enum_column(ChannelType, "channel_type"))
    integration_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL")
    )
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Grant(Row, Tenant, Base):
    """Permission for a group, user or agent to use a tool or an integration."""

    __tablename__ = "grants"
    __table_args__ = (
        Index("ix_grants_resource", "organisation_id", "resource_type", "resource_id"),
    )

    resource_type: Mapped[ResourceType] = mapped_column(enum_column(ResourceType, "resource_type"))
    resource_id: Mapped[uuid.UUID]
    grantee_type: Mapped[GranteeType] = mapped_column(enum_column(GranteeType, "grantee_type"))
    grantee_id: Mapped[uuid.UUID]
    granted_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None]

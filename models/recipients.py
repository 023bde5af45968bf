"""Subscribers (who notifications go to), their preferences, and topics to fan out to."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, LeadingTenant, Mutable, Row, Tenant, enum_column
from models.integrations import ChannelType


class Subscriber(Row, Mutable, LeadingTenant, Base):
    __tablename__ = "subscribers"
    __table_args__ = (UniqueConstraint("organisation_id", "external_id"),)

    #: The application's own id for this person (user id, account id).
    external_id: Mapped[str] = mapped_column(String(200))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))
    #: Per-channel addresses: ``{"push": {"device_tokens": [...]}, "chat": {"webhook_url": ...}}``.
    channels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Preference(Row, Mutable, Tenant, Base):
    """An opt-in or opt-out: for a workflow (or all), for a channel (or all)."""

    __tablename__ = "preferences"
    __table_args__ = (UniqueConstraint("subscriber_id", "workflow_id", "channel_type"),)

    subscriber_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    workflow_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE")
    )
    channel_type: Mapped[ChannelType | None] = mapped_column(
        enum_column(ChannelType, "channel_type")
    )
    enabled: Mapped[bool] = mapped_column(default=True)


class Topic(Row, Mutable, Tenant, Base):
    __tablename__ = "topics"
    __table_args__ = (UniqueConstraint("organisation_id", "key"),)

    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))


class TopicSubscription(Row, Tenant, Base):
    __tablename__ = "topic_subscriptions"
    __table_args__ = (UniqueConstraint("topic_id", "subscriber_id"),)

    topic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"))
    subscriber_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE")
    )

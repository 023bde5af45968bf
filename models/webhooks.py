"""Outbound webhooks: the organisation's own endpoints, and the events queued for them.

An organisation registers :class:`WebhookEndpoint` rows (a URL, the event types it wants, a
signing secret sealed with the credential key ring). When a delivery's status changes, the
same transaction writes one :class:`WebhookEvent` per subscribed endpoint: a small outbox of
its own, claimed, leased, retried and logged (:class:`WebhookEventAttempt`) the way deliveries
are, and swept by the same beat job. Every endpoint's copy of one event carries the same
``event_id``, which is the ``id`` of the posted body: receivers de-duplicate by it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Mutable, Row, Tenant, enum_column
from models.crypto import credential_keys
from models.delivery import AttemptOutcome
from models.types import EncryptedJSON


class WebhookEventType(enum.StrEnum):
    """What an endpoint may subscribe to (the ``type`` of a posted event)."""

    MESSAGE_SENT = "message.sent"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_BOUNCED = "message.bounced"
    MESSAGE_OPENED = "message.opened"
    MESSAGE_CLICKED = "message.clicked"
    MESSAGE_READ = "message.read"
    MESSAGE_SEEN = "message.seen"
    NOTIFICATION_CANCELLED = "notification.cancelled"


class WebhookEventStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    #: Given up after the last attempt, or refused for good (the URL guard): kept, not sent.
    FAILED = "failed"


TERMINAL_WEBHOOK_EVENT_STATUSES = frozenset({WebhookEventStatus.SENT, WebhookEventStatus.FAILED})


class WebhookEndpoint(Row, Mutable, Tenant, Base):
    """Where the organisation's application wants its events posted.

    ``secret`` is ``{"signing_secret": "..."}`` sealed with :data:`models.crypto.credential_keys`
    (write-only through the API, like integration credentials).
    """

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(Text)
    #: The :class:`WebhookEventType` values the endpoint receives.
    event_types: Mapped[list[Any]] = mapped_column(default=list)
    secret: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON(credential_keys))
    enabled: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str | None] = mapped_column(String(500))

    def __repr__(self) -> str:
        return f"WebhookEndpoint(id={self.id!s}, enabled={self.enabled!r})"


class WebhookEvent(Row, Mutable, Tenant, Base):
    """One event for one endpoint: the outbox row a worker posts (never a secret)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_events_due", "status", "next_attempt_at"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    #: The event's id, the same for every endpoint it went to: the posted body's ``id``.
    event_id: Mapped[uuid.UUID]
    type: Mapped[WebhookEventType] = mapped_column(
        enum_column(WebhookEventType, "webhook_event_type")
    )
    #: The body posted, as JSON (``{"id", "type", "createdAt", "data"}``).
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[WebhookEventStatus] = mapped_column(
        enum_column(WebhookEventStatus, "webhook_event_status"), default=WebhookEventStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    claim_token: Mapped[uuid.UUID | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None]
    sent_at: Mapped[datetime | None]


class WebhookEventAttempt(Row, Tenant, Base):
    """One post of one event to its endpoint. Never holds a secret or the answer's body."""

    __tablename__ = "webhook_event_attempts"

    webhook_event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    outcome: Mapped[AttemptOutcome] = mapped_column(enum_column(AttemptOutcome, "attempt_outcome"))
    http_status: Mapped[int | None]
    latency_ms: Mapped[float | None]
    error_class: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)

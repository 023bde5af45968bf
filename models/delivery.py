"""The outbox: notifications, their per-step deliveries, and every send attempt."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, LeadingTenant, Mutable, Row, Tenant, enum_column
from models.integrations import ChannelType
from models.lifecycle import ReportedStatus
from models.workflows import StepKind


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    SKIPPED = "skipped"
    #: The provider may or may not have sent it (no answer after the request was sent), and the
    #: integration's ``on_ambiguous`` setting says not to resend: at most once.
    UNKNOWN = "unknown"
    #: Cancelled by the producer (``DELETE /v1/events/trigger/{transactionId}``) before it was
    #: sent.
    CANCELLED = "cancelled"


TERMINAL_DELIVERY_STATUSES = frozenset(
    {
        DeliveryStatus.SENT,
        DeliveryStatus.FAILED,
        DeliveryStatus.SKIPPED,
        DeliveryStatus.UNKNOWN,
        DeliveryStatus.CANCELLED,
    }
)
#: The rows ``ix_deliveries_due`` holds: those still to be sent (every status but the terminal
#: ones), which the sweeper's and the claim's conditions each name.
DUE_INDEX_WHERE = "status IN ('queued', 'retrying', 'sending')"


class OnAmbiguous(enum.StrEnum):
    """What a delivery becomes when a provider gave no answer after the request was sent."""

    #: At least once: retried like any transient failure; the recipient may get it twice.
    RESEND = "resend"
    #: At most once: the delivery is recorded ``unknown`` and neither resent nor sent elsewhere.
    RECORD_UNKNOWN = "record_unknown"


class AttemptOutcome(enum.StrEnum):
    SENT = "sent"
    RETRYABLE = "retryable"
    #: No answer, and the request may have reached the provider (see ``AmbiguousError``).
    AMBIGUOUS = "ambiguous"
    INTEGRATION_ERROR = "integration_error"
    RECIPIENT_ERROR = "recipient_error"
    SKIPPED = "skipped"
    #: Accepted by the provider, then reported undelivered or soft-bounced, or not reported
    #: delivered in time, on a step whose success is ``delivered``
    #: (:mod:`dispatcher.lifecycle.routing`): the integration is not tried again for it.
    UNCONFIRMED = "unconfirmed"


class Notification(Row, Mutable, LeadingTenant, Base):
    """One trigger for one subscriber.

    ``(organisation_id, transaction_id, subscriber_id)`` is unique: the same trigger repeated
    creates nothing new, while one trigger may still fan out to many subscribers.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("organisation_id", "transaction_id", "subscriber_id"),
        Index("ix_notifications_digest", "organisation_id", "workflow_id", "subscriber_id"),
        # The activity API's pages, newest first: read in the index's order, not sorted from
        # every row of the organisation (2 s for a million rows).
        Index("ix_notifications_recent", "organisation_id", "created_at", "id"),
    )

    transaction_id: Mapped[str] = mapped_column(String(200))
    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    #: The workflow's version when triggered: the steps its deliveries were planned from.
    workflow_version: Mapped[int] = mapped_column(default=1, server_default="1")
    subscriber_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor: Mapped[dict[str, Any] | None]
    status: Mapped[NotificationStatus] = mapped_column(
        enum_column(NotificationStatus, "notification_status"),
        default=NotificationStatus.PENDING,
    )
    #: A digest leader collects the events of later notifications until ``digest_until``.
    digest_until: Mapped[datetime | None]
    #: When a sender took the digest's events; no event joins it afterwards (a later one starts
    #: a new digest), so what was read is what the digest sends, retries included.
    digest_closed_at: Mapped[datetime | None]
    #: The rendered ``config.key`` of the workflow's digest step (``None``: no key): the
    #: open digest an event joins has its subscriber and this key.
    digest_key: Mapped[str | None] = mapped_column(String(256))
    #: Set on a notification whose event was collected into another one's digest.
    digest_leader_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("notifications.id", ondelete="SET NULL"), index=True
    )


class Delivery(Row, Mutable, LeadingTenant, Base):
    """One channel step of one notification; the unit a worker sends."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "step_position"),
        # Only the rows a sweep or a claim looks for: a finished delivery (nearly every row of
        # a full table) is never added, so the index stays the size of the work in flight.
        Index(
            "ix_deliveries_due",
            "status",
            "next_attempt_at",
            postgresql_where=text(DUE_INDEX_WHERE),
            sqlite_where=text(DUE_INDEX_WHERE),
        ),
        Index("ix_deliveries_organisation_status", "organisation_id", "status"),
        # A provider callback names the message by the id the provider answered the send with.
        Index("ix_deliveries_provider_message", "integration_id", "provider_message_id"),
    )

    # No index of its own: the unique (notification_id, step_position) leads with it.
    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE")
    )
    step_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workflow_steps.id", ondelete="SET NULL")
    )
    step_position: Mapped[int]
    step_kind: Mapped[StepKind] = mapped_column(enum_column(StepKind, "step_kind"))
    channel_type: Mapped[ChannelType | None] = mapped_column(
        enum_column(ChannelType, "channel_type")
    )
    critical: Mapped[bool] = mapped_column(default=False)
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_column(DeliveryStatus, "delivery_status"), default=DeliveryStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    #: Set anew at every claim: only the holder of this token may renew the send lease or write
    #: the outcome (a worker whose lease ran out and was taken over can do neither).
    claim_token: Mapped[uuid.UUID | None]
    integration_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL")
    )
    provider: Mapped[str | None] = mapped_column(String(100))
    provider_message_id: Mapped[str | None] = mapped_column(String(500))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    #: Rendered content and resolved address, kept for audit and retries.
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: What the provider last reported of it after ``sent`` (its callbacks), and when that
    #: happened: ``status`` stays the sending status (see :mod:`models.lifecycle`).
    reported_status: Mapped[ReportedStatus | None] = mapped_column(
        enum_column(ReportedStatus, "reported_status")
    )
    reported_at: Mapped[datetime | None]


class DeliveryAttempt(Row, Tenant, Base):
    """One call to one provider for one delivery. Never holds a secret."""

    __tablename__ = "delivery_attempts"

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    integration_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL")
    )
    provider: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[AttemptOutcome] = mapped_column(enum_column(AttemptOutcome, "attempt_outcome"))
    http_status: Mapped[int | None]
    latency_ms: Mapped[float | None]
    error_class: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)


class InboxMessage(Row, Mutable, Tenant, Base):
    """An in-app message in a subscriber's inbox (the ``in_app`` channel)."""

    __tablename__ = "inbox_messages"
    __table_args__ = (Index("ix_inbox_messages_subscriber", "organisation_id", "subscriber_id"),)

    subscriber_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    delivery_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), unique=True
    )
    title: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seen_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]
    #: Hidden from the feed until then (the browser inbox's snooze).
    snoozed_until: Mapped[datetime | None]
    #: The step's ``options.tags``: the browser inbox filters its tabs by them.
    tags: Mapped[list[Any]] = mapped_column(default=list)
    #: ``{"primary": {"label", "url"}, "secondary": ...}`` from the step's options.
    actions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Which action the subscriber completed (``primary`` or ``secondary``), if any.
    completed_action: Mapped[str | None] = mapped_column(String(20))

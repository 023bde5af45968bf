"""Status-driven routing: the sends of a delivery that wait for the provider's confirmation.

A channel step whose ``config.success`` is ``{"delivered_within": SECONDS}`` counts as done
only once the provider reports the message ``delivered``. Each send of such a delivery writes a
:class:`DeliveryWatch`: which integration sent it, under which provider message id, and until
when a ``delivered`` event is awaited. The watch's :attr:`~DeliveryWatch.state` moves once, by a
conditional update, from ``waiting`` to where the provider's reports (or the clock) led, so a
failover is decided once however many callbacks and sweeps race for it. The watch also keeps the
first send's message id after a failover moved the delivery to another integration: a late
event for it still finds its delivery.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Row, Tenant, enum_column


class WatchState(enum.StrEnum):
    #: Sent; no ``delivered`` event yet, and ``wait_until`` has not passed.
    WAITING = "waiting"
    #: The provider reported it delivered (or opened, clicked) in time.
    DELIVERED = "delivered"
    #: Reported undelivered or soft-bounced, or not confirmed in time: sent again through the
    #: organisation's next integration for the channel.
    FAILED_OVER = "failed_over"
    #: As ``failed_over``, but no other integration was left: the delivery ended ``failed``.
    EXHAUSTED = "exhausted"
    #: A hard bounce, a complaint or an invalid address: suppressed, never sent elsewhere.
    SUPPRESSED = "suppressed"


class DeliveryWatch(Row, Tenant, Base):
    """One send of a delivery that waits for a ``delivered`` report (never a secret)."""

    __tablename__ = "delivery_watches"
    __table_args__ = (
        Index("ix_delivery_watches_message", "integration_id", "provider_message_id"),
        Index("ix_delivery_watches_due", "state", "wait_until"),
    )

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    integration_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL")
    )
    provider: Mapped[str] = mapped_column(String(100))
    provider_message_id: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime]
    #: A ``delivered`` report after this is too late: the delivery fails over.
    wait_until: Mapped[datetime]
    state: Mapped[WatchState] = mapped_column(
        enum_column(WatchState, "watch_state"), default=WatchState.WAITING
    )
    #: When and why the state left ``waiting``.
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)

"""After ``sent``: the delivery events providers reported, and the addresses not to send to.

A delivery's ``status`` stays its *sending* status (``sent`` is terminal for the sender, the
sweeper and the retry rules); what the provider said afterwards is ``Delivery.reported_status``
with ``reported_at``, and each event applied is a :class:`DeliveryEventRecord`, unique per
integration by the provider's event id, so a replayed callback is applied once.
"""

from __future__ import annotations

import enum
import re
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Row, Tenant, enum_column
from models.integrations import ChannelType


class ReportedStatus(enum.StrEnum):
    """What the provider reported of a sent delivery (the normalized callback kinds)."""

    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    UNDELIVERED = "undelivered"


#: Which reported status outranks which: a higher rank replaces a lower one whenever it comes
#: (an ``opened`` proves the delivery, so a late ``delivered`` does not undo it); within a rank
#: the later event wins (a soft bounce, then ``delivered`` on the provider's retry; or
#: ``delivered`` by the receiving server, then its asynchronous bounce).
REPORTED_RANK = {
    ReportedStatus.DELIVERED: 1,
    ReportedStatus.BOUNCED: 1,
    ReportedStatus.UNDELIVERED: 1,
    ReportedStatus.OPENED: 2,
    ReportedStatus.CLICKED: 3,
    ReportedStatus.COMPLAINED: 4,
}


class DeliveryEventRecord(Row, Tenant, Base):
    """One provider event applied to one delivery (never a secret, never the raw payload)."""

    __tablename__ = "delivery_events"
    __table_args__ = (
        UniqueConstraint("integration_id", "event_id"),
        Index("ix_delivery_events_delivery", "delivery_id", "occurred_at"),
    )

    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    integration_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL")
    )
    kind: Mapped[ReportedStatus] = mapped_column(enum_column(ReportedStatus, "reported_status"))
    occurred_at: Mapped[datetime]
    #: The provider's event id (or a digest of the event): de-duplicates replays.
    event_id: Mapped[str] = mapped_column(String(200))
    #: ``hard`` or ``soft`` on a bounce.
    bounce: Mapped[str | None] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)


class Suppression(Row, Tenant, Base):
    """An address the organisation no longer sends to on a channel (hard bounce, complaint,
    invalid number), until lifted. ``address`` is normalized (:func:`normalize_address`)."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("organisation_id", "channel_type", "address"),)

    channel_type: Mapped[ChannelType] = mapped_column(enum_column(ChannelType, "channel_type"))
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(500))
    source_delivery_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL")
    )


_NOT_DIGITS = re.compile(r"[^\d]")


def normalize_address(channel: ChannelType, address: str) -> str:
    """The form an address is suppressed and looked up in: an email address lower-cased, a phone
    number as E.164 digits with ``+`` (spaces, dashes, dots and brackets dropped; a leading
    ``00`` read as ``+``). Other channels' addresses are kept as given, stripped."""
    address = address.strip()
    if channel is ChannelType.EMAIL:
        return address.lower()
    if channel is ChannelType.SMS:
        digits = _NOT_DIGITS.sub("", address)
        if not address.startswith("+") and digits.startswith("00"):
            digits = digits[2:]
        return f"+{digits}"
    return address

"""What happened to a transaction: one row per delivery, for ``dispatcher status`` and callers."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.runtime.resources import database
from models import Delivery, DeliveryEventRecord, Integration, Notification, Subscriber


@dataclass(frozen=True)
class EventView:
    """One event a provider reported of a delivery (its callbacks), oldest first."""

    kind: str
    occurred_at: datetime
    reason: str | None
    url: str | None


@dataclass(frozen=True)
class DeliveryView:
    delivery_id: str
    subscriber: str
    step: int
    channel: str
    status: str
    attempts: int
    integration: str | None
    provider: str | None
    provider_message_id: str | None
    last_error: str | None
    next_attempt_at: datetime | None
    #: What the provider last reported after ``sent`` (``delivered``, ``opened``, ...).
    reported_status: str | None = None
    reported_at: datetime | None = None
    events: tuple[EventView, ...] = field(default_factory=tuple)


def transaction_status(organisation_id: uuid.UUID, transaction_id: str) -> list[DeliveryView]:
    with database().session() as session:
        rows = session.execute(
            select(Delivery, Subscriber.external_id, Integration.name)
            .join(Notification, Notification.id == Delivery.notification_id)
            .join(Subscriber, Subscriber.id == Notification.subscriber_id)
            .outerjoin(Integration, Integration.id == Delivery.integration_id)
            .where(
                Notification.organisation_id == organisation_id,
                Notification.transaction_id == transaction_id,
            )
            .order_by(Subscriber.external_id, Delivery.step_position)
        ).all()
        events = delivery_events(session, organisation_id, [row[0].id for row in rows])
    return [
        DeliveryView(
            delivery_id=str(delivery.id),
            subscriber=external_id,
            step=delivery.step_position,
            channel=delivery.channel_type.value
            if delivery.channel_type
            else delivery.step_kind.value,
            status=delivery.status.value,
            attempts=delivery.attempts,
            integration=integration_name,
            provider=delivery.provider,
            provider_message_id=delivery.provider_message_id,
            last_error=delivery.last_error,
            next_attempt_at=delivery.next_attempt_at,
            reported_status=delivery.reported_status.value if delivery.reported_status else None,
            reported_at=delivery.reported_at,
            events=tuple(events.get(delivery.id, ())),
        )
        for delivery, external_id, integration_name in rows
    ]


def delivery_events(
    session: Session, organisation_id: uuid.UUID, delivery_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[EventView]]:
    """The reported events of these deliveries of the organisation, oldest first."""
    found: dict[uuid.UUID, list[EventView]] = defaultdict(list)
    if not delivery_ids:
        return found
    for row in session.execute(
        select(
            DeliveryEventRecord.delivery_id, DeliveryEventRecord.kind,
            DeliveryEventRecord.occurred_at, DeliveryEventRecord.reason, DeliveryEventRecord.url,
        )
        .where(
            DeliveryEventRecord.organisation_id == organisation_id,
            DeliveryEventRecord.delivery_id.in_(delivery_ids),
        )
        .order_by(DeliveryEventRecord.occurred_at, DeliveryEventRecord.id)
    ):  # fmt: skip
        found[row.delivery_id].append(
            EventView(row.kind.value, row.occurred_at, row.reason, row.url)
        )
    return found

"""What happened to a transaction: one row per delivery, for ``dispatcher status`` and callers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from dispatcher.runtime.resources import database
from models import Delivery, Integration, Notification, Subscriber


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
        )
        for delivery, external_id, integration_name in rows
    ]

"""Retry a failed delivery by hand: it is queued again, with a fresh attempt budget.

The attempt log is kept (the timeline shows the earlier failures); the delivery's ``meta``
records when it was retried, and from then on only later attempts count against each
integration's budget (:data:`~dispatcher.sending.plan.RETRIED_AT`), so an integration that
failed it is tried again. Handed to the broker at once, or to the outbox sweeper when the broker
is down, as a trigger's deliveries are.
"""

from __future__ import annotations

import enum
import uuid
from datetime import timedelta

from sqlalchemy import select

from dispatcher.config import get_settings
from dispatcher.notifications.enqueue import send_batches
from dispatcher.runtime.resources import database
from dispatcher.sending.plan import RETRIED_AT
from dispatcher.sending.store import update_notification_statuses
from models import Delivery, DeliveryStatus
from models.types import utcnow

#: What can be retried: what failed, and what may or may not have been sent (at the caller's
#: word: retrying an ``unknown`` delivery may send it twice).
RETRYABLE = (DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN)


class Retry(enum.Enum):
    QUEUED = "queued"
    NOT_FOUND = "not_found"
    NOT_FAILED = "not_failed"


def retry_delivery(
    organisation_id: uuid.UUID, notification_id: uuid.UUID, delivery_id: uuid.UUID
) -> Retry:
    """Queue one of the organisation's failed deliveries again."""
    settings = get_settings()
    now = utcnow()
    with database().transaction() as session:
        delivery = session.scalars(
            select(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.notification_id == notification_id,
                Delivery.organisation_id == organisation_id,
            )
            .with_for_update()
        ).one_or_none()
        if delivery is None:
            return Retry.NOT_FOUND
        if delivery.status not in RETRYABLE:
            return Retry.NOT_FAILED
        delivery.status = DeliveryStatus.QUEUED
        delivery.attempts = 0
        delivery.next_attempt_at = now + timedelta(seconds=settings.enqueue_lease)
        delivery.meta = {**delivery.meta, RETRIED_AT: now.isoformat()}
        delivery.updated_at = now
        critical = delivery.critical
        session.flush()
        update_notification_statuses(session, {notification_id}, now)
    send_batches([(critical, [delivery_id])], settings)
    return Retry.QUEUED

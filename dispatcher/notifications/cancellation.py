"""Cancel a transaction: every delivery of it not sent yet becomes ``cancelled``.

Queued, retrying (waiting for a retry), delayed and digest-held deliveries are all rows that no
worker holds, so the one UPDATE settles them. A delivery a worker has claimed (``sending``) is
cancelled too: the worker reads its rows once more right before it sends
(:meth:`~dispatcher.sending.lease.BatchLease.recheck`) and its write-back acts only on rows it
still holds, so a cancelled delivery is neither sent after that read nor overwritten. A send
already on the wire when the cancel lands cannot be called back; such a delivery stays recorded
as cancelled. What was sent stays sent.

Each notification that had a delivery cancelled writes one ``notification.cancelled`` outbound
webhook event in the same transaction (:mod:`dispatcher.sending.webhook_events`), handed to the
broker after the commit.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update

from dispatcher.config import get_settings
from dispatcher.notifications.enqueue import publish_webhook_events
from dispatcher.runtime.resources import database
from dispatcher.sending.store import update_notification_statuses
from dispatcher.sending.webhook_events import Change, emit
from models import Delivery, DeliveryStatus, Notification, WebhookEventType
from models.types import utcnow

CANCELLABLE = (DeliveryStatus.QUEUED, DeliveryStatus.RETRYING, DeliveryStatus.SENDING)


def cancel_transaction(organisation_id: uuid.UUID, transaction_id: str) -> int:
    """Cancel the organisation's pending deliveries of ``transaction_id``; answers how many."""
    now = utcnow()
    notifications = select(Notification.id).where(
        Notification.organisation_id == organisation_id,
        Notification.transaction_id == transaction_id,
    )
    with database().transaction() as session:
        cancelled = session.execute(
            update(Delivery)
            .where(
                Delivery.organisation_id == organisation_id,
                Delivery.notification_id.in_(notifications.scalar_subquery()),
                Delivery.status.in_(CANCELLABLE),
            )
            .values(
                status=DeliveryStatus.CANCELLED,
                next_attempt_at=None,
                last_error="cancelled by the producer",
                updated_at=now,
            )
            .returning(Delivery.notification_id)
            .execution_options(synchronize_session=False)
        ).all()
        notification_ids = {row[0] for row in cancelled}
        update_notification_statuses(session, notification_ids, now)
        events = emit(session, [
            Change(organisation_id, WebhookEventType.NOTIFICATION_CANCELLED, notification_id,
                   status=DeliveryStatus.CANCELLED.value, reason="cancelled by the producer")
            for notification_id in sorted(notification_ids)
        ], now)  # fmt: skip
    publish_webhook_events(events, get_settings())
    return len(cancelled)

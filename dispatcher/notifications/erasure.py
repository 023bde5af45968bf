"""Erase a subscriber: the person's data goes, the record of what was sent stays.

In one transaction: every delivery of theirs not sent yet becomes ``cancelled`` (as
:func:`~dispatcher.notifications.cancellation.cancel_transaction` does it, so a worker holding
one does not send it after its recheck); the rendered content of their deliveries, the payload
and actor of their notifications, their inbox, preferences and topic memberships are deleted;
and the subscriber row is kept as an anonymous tombstone (no name, address, channel, data or
user; the external id replaced by ``erased:<row id>``) so the notifications, deliveries and the
attempt log (which never holds an address) still count in the organisation's history; the
stored outbound webhook events of their notifications name the tombstone instead. The
application's id is free again: a later trigger or create with it makes a new subscriber.

Tombstones are marked in ``meta`` (:data:`ERASED`) and left out of every listing and broadcast
(:func:`not_erased`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from dispatcher.notifications.cancellation import CANCELLABLE
from dispatcher.runtime.resources import database
from dispatcher.sending.store import update_notification_statuses
from models import (
    Delivery,
    DeliveryStatus,
    InboxMessage,
    Notification,
    Preference,
    Subscriber,
    ThrottleWindow,
    TopicSubscription,
    WebhookEvent,
)
from models.types import utcnow

#: The ``meta`` key of an erased subscriber's tombstone.
ERASED = "erased_at"
ERASED_PREFIX = "erased:"
#: What a tombstone keeps of a subscriber's fields.
PERSONAL_FIELDS: dict[str, Any] = {
    "first_name": None, "last_name": None, "email": None, "phone": None, "locale": None,
    "timezone": None, "channels": {}, "data": {}, "user_id": None,
}  # fmt: skip


def not_erased() -> Any:
    """A ``WHERE`` clause that leaves tombstones out."""
    return Subscriber.meta[ERASED].as_string().is_(None)


def erase_subscriber(organisation_id: uuid.UUID, subscriber_id: uuid.UUID) -> int:
    """Erase the organisation's subscriber (by row id); answers how many deliveries were
    cancelled."""
    now = utcnow()
    theirs = (
        select(Notification.id)
        .where(
            Notification.organisation_id == organisation_id,
            Notification.subscriber_id == subscriber_id,
        )
        .scalar_subquery()
    )
    with database().transaction() as session:
        cancelled = session.execute(
            update(Delivery)
            .where(
                Delivery.organisation_id == organisation_id,
                Delivery.notification_id.in_(theirs),
                Delivery.status.in_(CANCELLABLE),
            )
            .values(
                status=DeliveryStatus.CANCELLED,
                next_attempt_at=None,
                last_error="cancelled: the subscriber was deleted",
                updated_at=now,
            )
            .returning(Delivery.notification_id)
            .execution_options(synchronize_session=False)
        ).all()
        session.execute(
            update(Delivery)
            .where(
                Delivery.organisation_id == organisation_id, Delivery.notification_id.in_(theirs)
            )
            .values(content={})
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Notification)
            .where(
                Notification.organisation_id == organisation_id,
                Notification.subscriber_id == subscriber_id,
            )
            .values(payload={}, actor=None)
            .execution_options(synchronize_session=False)
        )
        for model in (InboxMessage, Preference, ThrottleWindow, TopicSubscription):
            session.execute(
                delete(model).where(
                    model.organisation_id == organisation_id,
                    model.subscriber_id == subscriber_id,
                )
            )
        _scrub_webhook_events(session, organisation_id, subscriber_id)
        session.execute(
            update(Subscriber)
            .where(Subscriber.organisation_id == organisation_id, Subscriber.id == subscriber_id)
            .values(
                **PERSONAL_FIELDS,
                external_id=f"{ERASED_PREFIX}{subscriber_id}",
                meta={ERASED: now.isoformat()},
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        update_notification_statuses(session, {row[0] for row in cancelled}, now)
    return len(cancelled)


def _scrub_webhook_events(
    session: Session, organisation_id: uuid.UUID, subscriber_id: uuid.UUID
) -> None:
    """The stored outbound webhook events of the subscriber's notifications name the
    tombstone instead of the application's subscriber id (those not posted yet are posted so)."""
    notification_ids = [
        str(item)
        for item in session.scalars(
            select(Notification.id).where(
                Notification.organisation_id == organisation_id,
                Notification.subscriber_id == subscriber_id,
            )
        )
    ]
    if not notification_ids:
        return
    rows = session.execute(
        select(WebhookEvent.id, WebhookEvent.payload)
        .where(
            WebhookEvent.organisation_id == organisation_id,
            WebhookEvent.payload["data"]["notificationId"].as_string().in_(notification_ids),
        )
        .with_for_update()
    ).all()
    tombstone = f"{ERASED_PREFIX}{subscriber_id}"
    for row in rows:
        data = {**(row.payload.get("data") or {}), "subscriberId": tombstone}
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == row.id)
            .values(payload={**row.payload, "data": data})
        )

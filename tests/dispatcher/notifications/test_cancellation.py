"""Cancelling a transaction: pending deliveries become cancelled, sent ones stay sent, and a batch
that claimed a delivery before the cancel neither sends it nor writes it back (real PostgreSQL,
in a database no sweeper of the session's worker reserves from)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update

from dispatcher.config import Settings
from dispatcher.notifications.cancellation import cancel_transaction
from dispatcher.runtime.resources import database
from dispatcher.sending.batch import process_batch
from dispatcher.sending.lease import BatchLease
from models import Delivery, DeliveryStatus, Notification, NotificationStatus
from models.types import utcnow
from tests.dispatcher.sending.test_store import claimed, deliveries, sent, settings, state, write

pytestmark = pytest.mark.usefixtures("sweeper_free_database")

__all__ = ["settings"]  # the fixture, shared with the store tests


def transaction_of(delivery_id: uuid.UUID) -> str:
    with database().session() as session:
        transaction_id = session.scalar(
            select(Notification.transaction_id)
            .join(Delivery, Delivery.notification_id == Notification.id)
            .where(Delivery.id == delivery_id)
        )
    assert transaction_id is not None
    return transaction_id


def test_pending_deliveries_are_cancelled_and_sent_ones_stay_sent(
    organisation_id: uuid.UUID, settings: Settings
) -> None:
    pending, done = deliveries(organisation_id, 2)
    with database().transaction() as session:
        session.execute(
            update(Delivery).where(Delivery.id == done).values(status=DeliveryStatus.SENT)
        )
    assert cancel_transaction(organisation_id, transaction_of(pending)) == 1
    assert cancel_transaction(organisation_id, transaction_of(done)) == 0
    assert state(pending) == (DeliveryStatus.CANCELLED, 0)
    assert state(done)[0] is DeliveryStatus.SENT
    with database().session() as session:
        notification = session.scalar(
            select(Notification.status)
            .join(Delivery, Delivery.notification_id == Notification.id)
            .where(Delivery.id == pending)
        )
    assert notification is NotificationStatus.COMPLETED


def test_another_organisation_cannot_cancel(organisation_id: uuid.UUID, settings: Settings) -> None:
    [pending] = deliveries(organisation_id, 1)
    assert cancel_transaction(uuid.uuid4(), transaction_of(pending)) == 0
    assert state(pending)[0] is DeliveryStatus.QUEUED


def test_a_cancelled_delivery_is_not_claimed(
    organisation_id: uuid.UUID, settings: Settings
) -> None:
    [pending] = deliveries(organisation_id, 1)
    cancel_transaction(organisation_id, transaction_of(pending))
    report = process_batch([str(pending)], settings)
    assert report.claimed == 0
    assert state(pending) == (DeliveryStatus.CANCELLED, 0)


def test_a_claimed_delivery_cancelled_before_the_send_is_neither_sent_nor_written(
    organisation_id: uuid.UUID, settings: Settings
) -> None:
    [pending] = deliveries(organisation_id, 1)
    token = claimed([pending], settings)
    lease = BatchLease(token, [pending], settings, utcnow())
    assert lease.holds(pending)
    assert cancel_transaction(organisation_id, transaction_of(pending)) == 1
    lease.recheck()
    assert not lease.holds(pending)
    written, report = write([sent(organisation_id, pending)], token, settings)
    assert written == set() and report.lost == 1
    assert state(pending) == (DeliveryStatus.CANCELLED, 0)

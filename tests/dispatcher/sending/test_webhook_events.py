"""Outbound webhook events: which change writes which event, for which endpoints, in the same
transaction as the change."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dispatcher import Ok, run_action
from dispatcher.lifecycle.apply import apply_callbacks
from dispatcher.lifecycle.routing import fail_over_timed_out
from dispatcher.lifecycle.webhooks import change, create
from dispatcher.notifications.cancellation import cancel_transaction
from dispatcher.notifications.erasure import erase_subscriber
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from dispatcher.sending.webhook_events import (
    REPORTED_EVENTS,
    Change,
    emit,
    inbox_marks,
    sending_change,
)
from models import (
    ChannelType,
    Delivery,
    DeliveryStatus,
    DeliveryWatch,
    InboxMessage,
    Notification,
    ReportedStatus,
    WebhookEvent,
    WebhookEventStatus,
    WebhookEventType,
)
from models.types import utcnow
from tests.dispatcher.lifecycle.support import callback, event, integration, sent_delivery

URL = "http://127.0.0.1:9/hooks"
ORG = uuid.uuid4()
NOTE = uuid.uuid4()
DELIVERY = uuid.uuid4()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (DeliveryStatus.SENT, WebhookEventType.MESSAGE_SENT),
        (DeliveryStatus.FAILED, WebhookEventType.MESSAGE_FAILED),
        (DeliveryStatus.RETRYING, None),
        (DeliveryStatus.SKIPPED, None),
        (DeliveryStatus.UNKNOWN, None),
        (DeliveryStatus.QUEUED, None),
    ],
)
def test_which_sending_status_reports_which_event(
    status: DeliveryStatus, expected: WebhookEventType | None
) -> None:
    found = sending_change(ORG, NOTE, DELIVERY, ChannelType.EMAIL, status, "why")
    assert (found.type if found else None) is expected
    if found is not None:
        assert found.status == status.value
        # A sent message has no failure reason, a failed one keeps it.
        assert found.reason == (None if status is DeliveryStatus.SENT else "why")


def test_which_reported_status_reports_which_event() -> None:
    assert REPORTED_EVENTS == {
        ReportedStatus.DELIVERED: WebhookEventType.MESSAGE_DELIVERED,
        ReportedStatus.OPENED: WebhookEventType.MESSAGE_OPENED,
        ReportedStatus.CLICKED: WebhookEventType.MESSAGE_CLICKED,
        ReportedStatus.BOUNCED: WebhookEventType.MESSAGE_BOUNCED,
        ReportedStatus.UNDELIVERED: WebhookEventType.MESSAGE_FAILED,
    }
    assert ReportedStatus.COMPLAINED not in REPORTED_EVENTS


@pytest.mark.parametrize(
    ("was", "now", "expected"),
    [
        ((False, False), (True, False), ["message.seen"]),
        ((False, False), (True, True), ["message.seen", "message.read"]),
        ((True, False), (True, True), ["message.read"]),
        ((True, True), (True, True), []),
        ((True, True), (True, False), []),  # unread again reports nothing
    ],
)
def test_inbox_marks(was: tuple[bool, bool], now: tuple[bool, bool], expected: list[str]) -> None:
    found = inbox_marks(ORG, DELIVERY, was=was, now=now)
    assert [item.type.value for item in found] == expected
    assert all(item.channel is ChannelType.IN_APP for item in found)
    assert inbox_marks(ORG, None, was=was, now=now) == []


def endpoint(organisation_id: uuid.UUID, *kinds: str) -> uuid.UUID:
    view, _ = create(organisation_id, url=URL, event_types=list(kinds))
    return view.id


def events(organisation_id: uuid.UUID) -> list[WebhookEvent]:
    with database().session() as session:
        return list(
            session.scalars(
                select(WebhookEvent)
                .where(WebhookEvent.organisation_id == organisation_id)
                .order_by(WebhookEvent.created_at, WebhookEvent.endpoint_id)
            )
        )


def notification_of(delivery_id: uuid.UUID) -> Notification:
    with database().session() as session:
        return session.scalars(
            select(Notification).join(Delivery, Delivery.notification_id == Notification.id)
            .where(Delivery.id == delivery_id)
        ).one()  # fmt: skip


def changes(organisation_id: uuid.UUID, delivery_id: uuid.UUID) -> list[Change]:
    notification_id = notification_of(delivery_id).id
    return [
        Change(organisation_id, kind, notification_id, delivery_id, ChannelType.EMAIL, status)
        for kind, status in [
            (WebhookEventType.MESSAGE_SENT, "sent"),
            (WebhookEventType.MESSAGE_DELIVERED, "delivered"),
        ]
    ]


def test_nothing_is_written_without_a_subscribed_endpoint(organisation_id: uuid.UUID) -> None:
    delivery_id = sent_delivery(organisation_id, integration(organisation_id), "m-0")
    with database().transaction() as session:
        assert emit(session, changes(organisation_id, delivery_id)) == []
    endpoint(organisation_id, "message.read")
    with database().transaction() as session:
        assert emit(session, changes(organisation_id, delivery_id)) == []
    assert events(organisation_id) == []


def test_only_subscribed_types_for_enabled_endpoints_of_the_organisation(
    organisation_id: uuid.UUID,
) -> None:
    other_organisation_id = create_organisation(f"Other {uuid.uuid4().hex[:6]}")
    delivery_id = sent_delivery(organisation_id, integration(organisation_id), "m-1")
    sent_only = endpoint(organisation_id, "message.sent")
    both = endpoint(organisation_id, "message.sent", "message.delivered")
    disabled = endpoint(organisation_id, "message.sent", "message.delivered")
    change(organisation_id, disabled, enabled=False)
    endpoint(other_organisation_id, "message.sent", "message.delivered")
    with database().transaction() as session:
        written = emit(session, changes(organisation_id, delivery_id))
    rows = events(organisation_id)
    assert {row.id for row in rows} == set(written)
    assert sorted((row.endpoint_id, row.type.value) for row in rows) == sorted([
        (sent_only, "message.sent"), (both, "message.sent"), (both, "message.delivered"),
    ])  # fmt: skip
    assert events(other_organisation_id) == []
    # One event, one id, whichever endpoint it goes to.
    sent = [row for row in rows if row.type is WebhookEventType.MESSAGE_SENT]
    assert len({row.event_id for row in sent}) == 1
    assert all(row.status is WebhookEventStatus.QUEUED for row in rows)


def test_the_body_names_the_message_and_no_address(organisation_id: uuid.UUID) -> None:
    delivery_id = sent_delivery(organisation_id, integration(organisation_id), "m-2")
    endpoint(organisation_id, "message.sent")
    notification = notification_of(delivery_id)
    with database().transaction() as session:
        emit(session, changes(organisation_id, delivery_id))
    (row,) = events(organisation_id)
    body: dict[str, Any] = row.payload
    assert body["id"] == str(row.event_id)
    assert body["type"] == "message.sent"
    assert body["createdAt"]
    assert body["data"] == {
        "notificationId": str(notification.id),
        "transactionId": notification.transaction_id,
        "deliveryId": str(delivery_id),
        "subscriberId": "ada",
        "workflow": body["data"]["workflow"],
        "channel": "email",
        "status": "sent",
        "reason": None,
    }
    assert body["data"]["workflow"].startswith("wf-")
    assert "@" not in str(body)


def test_a_rolled_back_change_leaves_no_event(organisation_id: uuid.UUID) -> None:
    delivery_id = sent_delivery(organisation_id, integration(organisation_id), "m-3")
    endpoint(organisation_id, "message.sent")

    class RolledBackError(Exception):
        pass

    def change_then_fail() -> None:
        with database().transaction() as session:
            assert len(emit(session, changes(organisation_id, delivery_id))) == 1
            raise RolledBackError

    with pytest.raises(RolledBackError):
        change_then_fail()
    assert events(organisation_id) == []


def test_a_callback_writes_the_reported_event_once(organisation_id: uuid.UUID) -> None:
    integration_id = integration(organisation_id)
    delivery_id = sent_delivery(organisation_id, integration_id, "m-4")
    endpoint(organisation_id, "message.delivered", "message.opened", "message.bounced")
    message = callback(
        organisation_id, integration_id,
        event("m-4", "delivered", 1000.0), event("m-4", "opened", 1001.0),
        event("m-4", "complained", 1002.0),
    )  # fmt: skip
    report = apply_callbacks([message])
    assert len(report.webhook_events) == 2
    apply_callbacks([message])  # replayed: applied once, so no new events
    rows = events(organisation_id)
    assert sorted(row.type.value for row in rows) == ["message.delivered", "message.opened"]
    assert {row.payload["data"]["deliveryId"] for row in rows} == {str(delivery_id)}


def test_cancellation_writes_notification_cancelled(organisation_id: uuid.UUID) -> None:
    delivery_id = sent_delivery(organisation_id, integration(organisation_id), "m-5")
    with database().transaction() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        row.status = DeliveryStatus.QUEUED
    endpoint(organisation_id, "notification.cancelled")
    notification = notification_of(delivery_id)
    assert cancel_transaction(organisation_id, notification.transaction_id) == 1
    (event_row,) = events(organisation_id)
    assert event_row.type is WebhookEventType.NOTIFICATION_CANCELLED
    assert event_row.payload["data"]["transactionId"] == notification.transaction_id
    assert event_row.payload["data"]["status"] == "cancelled"


def test_inbox_marks_write_seen_then_read_once(organisation_id: uuid.UUID) -> None:
    delivery_id = sent_delivery(
        organisation_id, integration(organisation_id), "m-6", channel=ChannelType.IN_APP
    )
    notification = notification_of(delivery_id)
    message_id = uuid.uuid4()
    with database().transaction() as session:
        session.add(InboxMessage(
            id=message_id, organisation_id=organisation_id,
            subscriber_id=notification.subscriber_id, delivery_id=delivery_id, body="hi",
        ))  # fmt: skip
    endpoint(organisation_id, "message.read", "message.seen")

    def mark(kind: str) -> None:
        result = run_action(
            "mark_inbox",
            {"subscriber_id": "ada", "message_ids": [str(message_id)], "as": kind},
            organisation_id=organisation_id,
        )
        assert isinstance(result, Ok), result

    mark("seen")
    mark("seen")  # no change: no event
    mark("read")
    mark("unread")
    mark("read")  # read again after unread: a new read
    kinds = [row.type.value for row in events(organisation_id)]
    assert kinds == ["message.seen", "message.read", "message.read"]
    assert all(row.payload["data"]["deliveryId"] == str(delivery_id)
               for row in events(organisation_id))  # fmt: skip
    assert {row.payload["data"]["channel"] for row in events(organisation_id)} == {"in_app"}


def test_erasing_the_subscriber_scrubs_their_stored_events(organisation_id: uuid.UUID) -> None:
    delivery_id = sent_delivery(organisation_id, integration(organisation_id), "m-7")
    endpoint(organisation_id, "message.sent")
    with database().transaction() as session:
        emit(session, changes(organisation_id, delivery_id))
    notification = notification_of(delivery_id)
    erase_subscriber(organisation_id, notification.subscriber_id)
    (row,) = events(organisation_id)
    assert row.payload["data"]["subscriberId"] == f"erased:{notification.subscriber_id}"
    assert row.payload["data"]["deliveryId"] == str(delivery_id)


def test_routing_with_nowhere_left_writes_message_failed(organisation_id: uuid.UUID) -> None:
    first = integration(organisation_id)
    delivery_id = sent_delivery(organisation_id, first, "m-8")
    past = utcnow() - timedelta(seconds=1)
    with database().transaction() as session:
        session.add(DeliveryWatch(
            organisation_id=organisation_id, delivery_id=delivery_id, integration_id=first,
            provider="fake_http", provider_message_id="m-8",
            sent_at=past - timedelta(seconds=30), wait_until=past,
        ))  # fmt: skip
    endpoint(organisation_id, "message.failed")
    assert fail_over_timed_out() >= 1
    (row,) = events(organisation_id)
    assert row.type is WebhookEventType.MESSAGE_FAILED
    assert row.payload["data"]["status"] == "failed"
    assert "not reported delivered within 30 s" in row.payload["data"]["reason"]

"""Sent deliveries made directly in the database, and callback messages for them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from dispatcher.runtime.resources import database
from models import ChannelType, Delivery, DeliveryStatus, Notification, StepKind, Subscriber
from tests.dispatcher.notify_support import act, subscriber, workflow

EMAIL_STEP = {"kind": "email", "template": {"subject": "Hi", "body": "Hello"}}


def integration(organisation_id: uuid.UUID, secret: str = "s3cret", **settings: Any) -> uuid.UUID:
    return act(
        organisation_id,
        "create_integration",
        {
            "name": f"fake-{uuid.uuid4().hex[:6]}", "provider": "fake_http",
            "channel_type": "email",
            "credentials": {"api_key": "SECRET-key", "webhook_secret": secret},
            "settings": {"url": "http://127.0.0.1:9/unused", **settings},
            "is_primary": True,
        },
    )  # fmt: skip


def sent_delivery(
    organisation_id: uuid.UUID,
    integration_id: uuid.UUID,
    message_id: str,
    *,
    external_id: str = "ada",
    channel: ChannelType = ChannelType.EMAIL,
) -> uuid.UUID:
    """A delivery the integration sent as ``message_id`` (subscriber and workflow made once)."""
    with database().session() as session:
        subscriber_id = session.scalar(
            select(Subscriber.id).where(
                Subscriber.organisation_id == organisation_id,
                Subscriber.external_id == external_id,
            )
        )
    if subscriber_id is None:
        subscriber_id = subscriber(organisation_id, external_id)
    key = f"wf-{uuid.uuid4().hex[:6]}"
    workflow_id = workflow(organisation_id, key, [EMAIL_STEP])
    with database().transaction() as session:
        notification = Notification(
            organisation_id=organisation_id, transaction_id=uuid.uuid4().hex,
            workflow_id=workflow_id, subscriber_id=subscriber_id,
        )  # fmt: skip
        session.add(notification)
        session.flush()
        delivery = Delivery(
            organisation_id=organisation_id, notification_id=notification.id, step_position=0,
            step_kind=StepKind(channel.value), channel_type=channel, status=DeliveryStatus.SENT,
            integration_id=integration_id, provider="fake_http", provider_message_id=message_id,
            attempts=1, sent_at=datetime.now(UTC),
        )  # fmt: skip
        session.add(delivery)
        session.flush()
        return delivery.id


def callback(
    organisation_id: uuid.UUID, integration_id: uuid.UUID, *events: dict[str, Any]
) -> dict[str, Any]:
    """A broker message as the API makes it."""
    return {
        "integration_id": str(integration_id), "organisation_id": str(organisation_id),
        "provider": "fake_http", "events": list(events),
    }  # fmt: skip


def event(message_id: str, kind: str, at: float, **fields: Any) -> dict[str, Any]:
    return {
        "kind": kind, "provider_message_id": message_id,
        "occurred_at": datetime.fromtimestamp(at, UTC).isoformat(),
        "event_id": fields.pop("event_id", f"{message_id}-{kind}-{at}"), **fields,
    }  # fmt: skip

"""Outbound webhook events, written in the transaction of the status change they report.

A transactional outbox: whoever changes a delivery's status (the batch's write-back, a
provider's callback, an inbox read mark, a cancellation) hands the changes to :func:`emit` in
the same session, and for every endpoint of the organisation subscribed to the change's type a
:class:`~models.WebhookEvent` row is inserted beside it. A rolled-back change leaves no event;
a committed one leaves its events in the database until they are posted
(:mod:`dispatcher.sending.webhook_posting`).

Cost: one query on ``webhook_endpoints`` by organisation (its index) per call, whatever the
number of changes; only when an endpoint is subscribed, one more query for the notifications'
transaction ids, subscriber ids and workflows. Nothing is cached between calls, so an endpoint
created, changed or disabled by another process counts from the next transaction on.

The event body (``payload``)::

    {"id": <event uuid>, "type": "message.delivered", "createdAt": <ISO 8601>,
     "data": {"notificationId", "transactionId", "deliveryId", "subscriberId", "workflow",
              "channel", "status", "reason"}}

``subscriberId`` is the organisation's own subscriber id (``external_id``). No address (email,
phone, device token, URL), no rendered content and no secret is ever in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.config import get_settings
from models import (
    ChannelType,
    Delivery,
    DeliveryStatus,
    Notification,
    ReportedStatus,
    Subscriber,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventStatus,
    WebhookEventType,
    Workflow,
)
from models.bulk import among, insert_many
from models.ids import new_id, new_row_id
from models.types import utcnow

#: The event a delivery's sending status reports (the others report none).
SENDING_EVENTS = {
    DeliveryStatus.SENT: WebhookEventType.MESSAGE_SENT,
    DeliveryStatus.FAILED: WebhookEventType.MESSAGE_FAILED,
}
#: The event a provider-reported status reports; ``complained`` has no event type of its own.
REPORTED_EVENTS = {
    ReportedStatus.DELIVERED: WebhookEventType.MESSAGE_DELIVERED,
    ReportedStatus.OPENED: WebhookEventType.MESSAGE_OPENED,
    ReportedStatus.CLICKED: WebhookEventType.MESSAGE_CLICKED,
    ReportedStatus.BOUNCED: WebhookEventType.MESSAGE_BOUNCED,
    ReportedStatus.UNDELIVERED: WebhookEventType.MESSAGE_FAILED,
}
#: A reason is cut to this many characters in the posted body.
MAX_REASON = 500


@dataclass(frozen=True)
class Change:
    """A status change worth an event (what the writer knows; the rest is read here)."""

    organisation_id: uuid.UUID
    type: WebhookEventType
    #: None when only the delivery is known (an inbox message): read from the delivery.
    notification_id: uuid.UUID | None
    delivery_id: uuid.UUID | None = None
    channel: ChannelType | None = None
    #: The status as the API shows it (``sent``, ``delivered``, ``read``, ``cancelled``...).
    status: str | None = None
    reason: str | None = None


def sending_change(  # noqa: PLR0917 - the columns of a written delivery
    organisation_id: uuid.UUID,
    notification_id: uuid.UUID,
    delivery_id: uuid.UUID,
    channel: ChannelType | None,
    status: DeliveryStatus,
    reason: str | None,
) -> Change | None:
    """The change a delivery's new sending status reports, or None."""
    kind = SENDING_EVENTS.get(status)
    if kind is None:
        return None
    return Change(
        organisation_id, kind, notification_id, delivery_id, channel, status.value,
        reason if status is not DeliveryStatus.SENT else None,
    )  # fmt: skip


def emit(
    session: Session, changes: Sequence[Change], now: datetime | None = None
) -> list[uuid.UUID]:
    """Insert the events of ``changes`` for the endpoints subscribed to them, in ``session``'s
    transaction; answers the ids of the rows written (to hand to the broker after the commit;
    the sweeper finds them anyway)."""
    if not changes:
        return []
    organisations = {change.organisation_id for change in changes}
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.organisation_id, WebhookEndpoint.event_types)
        .where(
            among(session, WebhookEndpoint.organisation_id, organisations),
            WebhookEndpoint.enabled.is_(True),
        )
    ).all()  # fmt: skip
    subscribed: dict[uuid.UUID, list[tuple[uuid.UUID, frozenset[str]]]] = {}
    for row in endpoints:
        subscribed.setdefault(row.organisation_id, []).append(
            (row.id, frozenset(str(kind) for kind in row.event_types or ()))
        )
    wanted = [
        change
        for change in changes
        if any(
            change.type.value in kinds for _, kinds in subscribed.get(change.organisation_id, [])
        )
    ]
    if not wanted:
        return []
    wanted = _with_notifications(session, wanted)
    now = now or utcnow()
    # Reserved for the broker's message sent after the commit; the sweeper's after that.
    reserved = now + timedelta(seconds=get_settings().enqueue_lease)
    context = _context(session, {c.notification_id for c in wanted if c.notification_id})
    rows: list[dict[str, Any]] = []
    for change in wanted:
        event_id = new_id()
        assert change.notification_id is not None
        body = _body(event_id, change, context.get(change.notification_id), now)
        for endpoint_id, kinds in subscribed[change.organisation_id]:
            if change.type.value in kinds:
                rows.append({
                    "id": new_row_id(), "organisation_id": change.organisation_id,
                    "endpoint_id": endpoint_id, "event_id": event_id, "type": change.type,
                    "payload": body, "status": WebhookEventStatus.QUEUED, "attempts": 0,
                    "next_attempt_at": reserved, "meta": {}, "created_at": now, "updated_at": now,
                })  # fmt: skip
    insert_many(session, WebhookEvent, rows)
    return [row["id"] for row in rows]


def inbox_marks(
    organisation_id: uuid.UUID,
    delivery_id: uuid.UUID | None,
    *,
    was: tuple[bool, bool],
    now: tuple[bool, bool],
) -> list[Change]:
    """The ``message.seen`` / ``message.read`` changes of an inbox message whose (seen, read)
    flags went from ``was`` to ``now`` (unread again, or archived, reports nothing of its own)."""
    if delivery_id is None:
        return []
    changes = []
    for position, kind in ((0, WebhookEventType.MESSAGE_SEEN), (1, WebhookEventType.MESSAGE_READ)):
        if now[position] and not was[position]:
            status = "seen" if position == 0 else "read"
            changes.append(
                Change(organisation_id, kind, None, delivery_id, ChannelType.IN_APP, status)
            )
    return changes


def _with_notifications(session: Session, changes: list[Change]) -> list[Change]:
    """``changes`` with the notification of those that name only their delivery (one query;
    a delivery gone since is dropped)."""
    missing = {c.delivery_id for c in changes if c.notification_id is None and c.delivery_id}
    if not missing:
        return [change for change in changes if change.notification_id is not None]
    rows = session.execute(
        select(Delivery.id, Delivery.notification_id).where(among(session, Delivery.id, missing))
    )
    found = {item.id: item.notification_id for item in rows}
    return [
        replace(change, notification_id=found[change.delivery_id])
        if change.notification_id is None and change.delivery_id in found
        else change
        for change in changes
        if change.notification_id is not None or change.delivery_id in found
    ]


@dataclass(frozen=True)
class _Context:
    transaction_id: str
    subscriber_id: str | None
    workflow: str | None


def _context(session: Session, notification_ids: set[uuid.UUID]) -> dict[uuid.UUID, _Context]:
    rows = session.execute(
        select(Notification.id, Notification.transaction_id, Subscriber.external_id, Workflow.key)
        .outerjoin(Subscriber, Subscriber.id == Notification.subscriber_id)
        .outerjoin(Workflow, Workflow.id == Notification.workflow_id)
        .where(among(session, Notification.id, notification_ids))
    ).all()  # fmt: skip
    return {row.id: _Context(row.transaction_id, row.external_id, row.key) for row in rows}


def _body(
    event_id: uuid.UUID, change: Change, context: _Context | None, now: datetime
) -> dict[str, Any]:
    return {
        "id": str(event_id),
        "type": change.type.value,
        "createdAt": now.isoformat(),
        "data": {
            "notificationId": str(change.notification_id),
            "transactionId": context.transaction_id if context else None,
            "deliveryId": str(change.delivery_id) if change.delivery_id else None,
            "subscriberId": context.subscriber_id if context else None,
            "workflow": context.workflow if context else None,
            "channel": change.channel.value if change.channel else None,
            "status": change.status,
            "reason": change.reason[:MAX_REASON] if change.reason else None,
        },
    }

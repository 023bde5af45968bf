"""The browser inbox's marks write outbound webhook events (one message, and in bulk)."""

from __future__ import annotations

from sqlalchemy import select

from dispatcher.lifecycle.webhooks import create
from dispatcher.runtime.resources import database
from models import InboxMessage, WebhookEvent
from tests.dispatcher.api.inbox.conftest import Inbox


def kinds(inbox: Inbox) -> list[tuple[str, str]]:
    """(delivery id, event type) of the organisation's events, oldest first."""
    with database().session() as session:
        rows = session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.organisation_id == inbox.organisation_id)
            .order_by(WebhookEvent.created_at)
        ).all()
        return [(row.payload["data"]["deliveryId"], row.type.value) for row in rows]


def delivery_of(message_id: str) -> str:
    with database().session() as session:
        return str(session.scalar(select(InboxMessage.delivery_id).where(
            InboxMessage.id == message_id)))  # fmt: skip


def test_read_one_and_seen_in_bulk_write_their_events(inbox: Inbox) -> None:
    create(inbox.organisation_id, url="http://127.0.0.1:9/hooks",
           event_types=["message.read", "message.seen"])  # fmt: skip
    workflow_id = inbox.workflow("welcome")
    first = inbox.put("ada", workflow_id=workflow_id)
    second = inbox.put("ada", workflow_id=workflow_id)
    headers = inbox.headers("ada")
    answer = inbox.client.patch(f"/v1/inbox/notifications/{first}/read", headers=headers)
    assert answer.status_code == 200, answer.text
    assert kinds(inbox) == [(delivery_of(first), "message.seen"),
                            (delivery_of(first), "message.read")]  # fmt: skip
    answer = inbox.client.post("/v1/inbox/notifications/seen", json={}, headers=headers)
    assert answer.status_code == 204, answer.text
    # Only the message not seen before becomes seen.
    assert kinds(inbox)[2:] == [(delivery_of(second), "message.seen")]
    answer = inbox.client.post("/v1/inbox/notifications/read", json={}, headers=headers)
    assert answer.status_code == 204, answer.text
    assert kinds(inbox)[3:] == [(delivery_of(second), "message.read")]

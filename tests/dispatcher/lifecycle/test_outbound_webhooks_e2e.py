"""Outbound webhooks end to end: an endpoint created through the real ``dispatcher api``
process, a trigger sent by the session's real worker through the local fake provider, whose
``delivered`` callback the API receives and the worker applies; a local receiver gets the
events, signed, and (when it was down, then answering 503) gets them once it is back, each
event id at least once and, after de-duplication by id, exactly once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from dispatcher import trigger
from dispatcher.api.keys import create_key
from dispatcher.dev.api_process import running_api
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.runtime.resources import database
from models import (
    Delivery,
    Notification,
    WebhookEvent,
    WebhookEventAttempt,
    WebhookEventStatus,
)
from providers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from tests.conftest import DATA_DIR, free_port
from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.notify_support import act, subscriber, workflow
from tests.dispatcher.webhook_receiver import Receiver

pytestmark = pytest.mark.usefixtures("worker")

PROVIDER_SECRET = "whsec-provider-callbacks"
EMAIL = {"kind": "email", "template": {"subject": "Hi", "body": "Code {{ payload.code }}"}}


@pytest.fixture(scope="module")
def api_url(postgres_url: str, redis_url: str) -> Iterator[str]:
    port = free_port()
    with running_api(port=port, log_file=DATA_DIR / "api-webhooks.log", start_timeout=120):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def keyed(organisation_id: uuid.UUID) -> Keyed:
    return Keyed(organisation_id, create_key(organisation_id, "tests").key)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.start()
    yield found
    found.stop()


@dataclass
class World:
    api_url: str
    keyed: Keyed
    fake: FakeProviderServer

    def endpoint(self, url: str, *kinds: str) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.api_url}/v1/webhooks/endpoints",
            json={"url": url, "eventTypes": list(kinds)},
            headers=self.keyed.headers,
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        data: dict[str, Any] = answer.json()["data"]
        return data


@pytest.fixture
def world(
    api_url: str, keyed: Keyed, fake_provider: FakeProviderServer, organisation_id: uuid.UUID
) -> World:
    subscriber(organisation_id, "ada", email="ada@example.com")
    path = f"{organisation_id.hex[:12]}-hooks"
    integration_id = act(
        organisation_id,
        "create_integration",
        {
            "name": "mail", "provider": "fake_http", "channel_type": "email",
            "credentials": {"api_key": "SECRET-mail", "webhook_secret": PROVIDER_SECRET},
            "settings": {"url": f"{fake_provider.url}/{path}"}, "is_primary": True,
        },
    )  # fmt: skip
    fake_provider.configure(
        path, callback_url=f"{api_url}/v1/webhooks/providers/{integration_id}",
        callback_secret=PROVIDER_SECRET, callback_status="delivered", callback_delay_ms=200,
    )  # fmt: skip
    workflow(organisation_id, "code", [EMAIL])
    return World(api_url, keyed, fake_provider)


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def delivery_of(organisation_id: uuid.UUID, transaction_id: str) -> uuid.UUID:
    with database().session() as session:
        found = session.scalar(
            select(Delivery.id)
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(Notification.organisation_id == organisation_id,
                   Notification.transaction_id == transaction_id)
        )  # fmt: skip
    assert found is not None
    return found


def kinds_for(receiver: Receiver, delivery_id: uuid.UUID) -> set[str]:
    return {
        event["type"]
        for event in receiver.events()
        if event["data"]["deliveryId"] == str(delivery_id)
    }


def test_the_application_receives_sent_then_delivered_signed(
    world: World, receiver: Receiver, organisation_id: uuid.UUID
) -> None:
    created = world.endpoint(receiver.url, "message.sent", "message.delivered")
    transaction = trigger(organisation_id, "code", "ada", {"code": "42"}).transaction_id
    eventually(lambda: delivery_of(organisation_id, transaction) is not None, "the delivery")
    delivery_id = delivery_of(organisation_id, transaction)
    eventually(
        lambda: kinds_for(receiver, delivery_id) == {"message.sent", "message.delivered"},
        "message.sent and message.delivered at the receiver",
    )
    for item in receiver.received:
        assert verify_signature(
            created["secret"], item.headers[TIMESTAMP_HEADER.lower()], item.body,
            item.headers[SIGNATURE_HEADER.lower()],
        )  # fmt: skip
        assert not verify_signature(
            "not-the-secret-at-all", item.headers[TIMESTAMP_HEADER.lower()], item.body,
            item.headers[SIGNATURE_HEADER.lower()],
        )  # fmt: skip
        event = item.event
        assert item.headers["idempotency-key"] == event["id"]
        assert item.headers["x-dispatcher-event-type"] == event["type"]
        assert event["data"]["transactionId"] == transaction
        assert event["data"]["subscriberId"] == "ada"
        assert event["data"]["workflow"] == "code"
        assert event["data"]["channel"] == "email"
        assert "ada@example.com" not in item.body.decode()
        assert created["secret"] not in item.body.decode()
    statuses = {event["type"]: event["data"]["status"] for event in receiver.events()}
    assert statuses == {"message.sent": "sent", "message.delivered": "delivered"}
    # The API lists what was posted and how.
    listed = httpx.get(
        f"{world.api_url}/v1/webhooks/endpoints/{created['_id']}/deliveries",
        headers=world.keyed.headers, timeout=10,
    ).json()["data"]  # fmt: skip
    assert sorted(item["type"] for item in listed) == ["message.delivered", "message.sent"]
    assert {item["status"] for item in listed} == {"sent"}
    assert created["secret"] not in json.dumps(listed)


def test_events_wait_while_the_receiver_is_down_and_arrive_once_it_is_back(
    world: World, organisation_id: uuid.UUID
) -> None:
    receiver = Receiver()  # not started: its port refuses connections
    world.endpoint(receiver.url, "message.sent", "message.delivered")
    transactions = [
        trigger(organisation_id, "code", "ada", {"code": str(n)}).transaction_id for n in range(3)
    ]

    def attempts_made() -> int:
        with database().session() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(WebhookEventAttempt)
                    .where(WebhookEventAttempt.organisation_id == organisation_id)
                )
                or 0
            )

    def open_events() -> int:
        with database().session() as session:
            return int(
                session.scalar(
                    select(func.count()).select_from(WebhookEvent).where(
                        WebhookEvent.organisation_id == organisation_id,
                        WebhookEvent.status != WebhookEventStatus.SENT,
                    )
                )
                or 0
            )  # fmt: skip

    # Refused connections, retried: six events (three sent, three delivered), none posted.
    eventually(lambda: attempts_made() >= 8, "several refused attempts")
    assert open_events() == 6
    # Up, but answering 503 for a while: still retried, still not lost.
    receiver.status = 503
    receiver.start()
    try:
        eventually(lambda: receiver.refused >= 2, "503 answers")
        assert receiver.received == []
        receiver.status = 200
        delivery_ids = [delivery_of(organisation_id, t) for t in transactions]
        expected = {(str(d), kind) for d in delivery_ids for kind in ("message.sent",
                                                                      "message.delivered")}  # fmt: skip

        def arrived() -> set[tuple[str, str]]:
            return {(e["data"]["deliveryId"], e["type"]) for e in receiver.events()}

        eventually(lambda: arrived() == expected, "every event after the receiver came back")
        eventually(lambda: open_events() == 0, "every event recorded sent")
    finally:
        receiver.stop()
    # At least once: each event id arrived, and de-duplicated by id each event is there once.
    by_id: dict[str, set[tuple[str, str]]] = {}
    for event in receiver.events():
        by_id.setdefault(event["id"], set()).add((event["data"]["deliveryId"], event["type"]))
    assert len(by_id) == 6
    assert all(len(value) == 1 for value in by_id.values())
    assert {item for value in by_id.values() for item in value} == expected
    with database().session() as session:
        stored = set(
            session.scalars(
                select(WebhookEvent.event_id).where(WebhookEvent.organisation_id == organisation_id)
            )
        )
    assert {uuid.UUID(item) for item in by_id} == stored
    # The attempt log kept the failures.
    assert attempts_made() >= 8 + 6

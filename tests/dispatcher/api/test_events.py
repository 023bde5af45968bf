"""The events router against PostgreSQL: rows written as the producer writes them, broadcasts in
chunks, cancellation, idempotency keys, and one organisation's key never reaching another's rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from dispatcher.api.keys import create_key
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import Delivery, DeliveryStatus, Notification, Subscriber
from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.notify_support import EMAIL_STEP, subscriber, workflow

TRIGGER = "/v1/events/trigger"
DELAYED = [{"kind": "delay", "config": {"seconds": 3600}}, EMAIL_STEP]


def statuses(organisation_id: uuid.UUID, transaction_id: str) -> list[DeliveryStatus]:
    with database().session() as session:
        return list(
            session.scalars(
                select(Delivery.status)
                .join(Notification, Notification.id == Delivery.notification_id)
                .where(
                    Notification.organisation_id == organisation_id,
                    Notification.transaction_id == transaction_id,
                )
            )
        )


def test_trigger_answers_novus_receipt_and_writes_the_outbox(
    client: TestClient, keyed: Keyed
) -> None:
    workflow(keyed.organisation_id, "later", DELAYED)
    subscriber(keyed.organisation_id, "ada", first_name="Ada")
    answer = client.post(
        TRIGGER,
        headers=keyed.headers,
        json={
            "name": "later",
            "to": ["ada", {"subscriberId": "bo", "email": "bo@example.com", "firstName": "Bo"}],
            "payload": {"code": "1"},
            "transactionId": "tx-1",
            "overrides": {"email": {"from": "x"}, "layoutIdentifier": "l"},
            "context": {"tenant": "acme"},
            "tenant": "acme",
            "bridgeUrl": "https://example.com",
        },
    )
    assert answer.status_code == 201, answer.text
    assert answer.json() == {
        "data": {"acknowledged": True, "status": "processed", "transactionId": "tx-1"}
    }
    assert statuses(keyed.organisation_id, "tx-1") == [DeliveryStatus.QUEUED] * 2
    with database().session() as session:
        bo = session.scalars(
            select(Subscriber).where(
                Subscriber.organisation_id == keyed.organisation_id, Subscriber.external_id == "bo"
            )
        ).one()
    assert (bo.first_name, bo.email) == ("Bo", "bo@example.com")


def test_bulk_writes_every_event_and_cancel_cancels_what_is_pending(
    client: TestClient, keyed: Keyed
) -> None:
    workflow(keyed.organisation_id, "later", DELAYED)
    subscriber(keyed.organisation_id, "ada")
    events = [
        {"name": "later", "to": {"subscriberId": "ada"}, "payload": {"code": "1"},
         "transactionId": f"bulk-{n}"}
        for n in range(3)
    ]  # fmt: skip
    answer = client.post(f"{TRIGGER}/bulk", headers=keyed.headers, json={"events": events})
    assert answer.status_code == 201, answer.text
    assert [item["transactionId"] for item in answer.json()["data"]] == [
        "bulk-0", "bulk-1", "bulk-2",
    ]  # fmt: skip
    cancelled = client.delete(f"{TRIGGER}/bulk-1", headers=keyed.headers)
    assert (cancelled.status_code, cancelled.json()) == (200, True)
    assert statuses(keyed.organisation_id, "bulk-1") == [DeliveryStatus.CANCELLED]
    assert statuses(keyed.organisation_id, "bulk-0") == [DeliveryStatus.QUEUED]
    again = client.delete(f"{TRIGGER}/bulk-1", headers=keyed.headers)
    assert again.json() is False


def test_a_key_reaches_only_its_own_organisation(client: TestClient, keyed: Keyed) -> None:
    other = create_organisation(f"Other {uuid.uuid4().hex[:6]}")
    workflow(other, "theirs", DELAYED)
    subscriber(other, "eve")
    other_key = create_key(other, "theirs").key
    theirs = {"Authorization": f"ApiKey {other_key}"}
    body = {"name": "theirs", "to": "eve", "payload": {"code": "1"}, "transactionId": "t"}
    assert client.post(TRIGGER, headers=theirs, json=body).status_code == 201
    refused = client.post(TRIGGER, headers=keyed.headers, json=body)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "name"
    assert client.delete(f"{TRIGGER}/t", headers=keyed.headers).json() is False
    assert statuses(other, "t") == [DeliveryStatus.QUEUED]


def test_broadcast_reaches_every_subscriber_in_chunks_and_resumes(
    client: TestClient, keyed: Keyed, settings_env: Callable[..., None]
) -> None:
    settings_env(broadcast_chunk_size=4)
    workflow(keyed.organisation_id, "news", DELAYED)
    for n in range(10):
        subscriber(keyed.organisation_id, f"s{n}")
    body = {"name": "news", "payload": {"code": "1"}, "transactionId": "news-1"}
    answer = client.post(f"{TRIGGER}/broadcast", headers=keyed.headers, json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["data"]["transactionId"] == "news-1"
    assert len(statuses(keyed.organisation_id, "news-1")) == 10
    for n in range(10, 13):
        subscriber(keyed.organisation_id, f"s{n}")
    client.post(f"{TRIGGER}/broadcast", headers=keyed.headers, json=body)
    assert len(statuses(keyed.organisation_id, "news-1")) == 13


def test_the_same_idempotency_key_replays_and_a_different_body_is_422(
    client: TestClient, keyed: Keyed
) -> None:
    workflow(keyed.organisation_id, "later", DELAYED)
    subscriber(keyed.organisation_id, "ada")
    headers = {**keyed.headers, "Idempotency-Key": uuid.uuid4().hex}
    body = {"name": "later", "to": "ada", "payload": {"code": "1"}}
    first = client.post(TRIGGER, headers=headers, json=body)
    second = client.post(TRIGGER, headers=headers, json=body)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotency-Replayed"] == "true"
    transaction_id = first.json()["data"]["transactionId"]
    assert transaction_id.startswith("idem-")
    assert len(statuses(keyed.organisation_id, transaction_id)) == 1
    changed = client.post(TRIGGER, headers=headers, json={**body, "payload": {"code": "2"}})
    assert changed.status_code == 422
    assert set(changed.json()["errors"]) == {"idempotency-key"}


def test_an_error_answer_does_not_use_up_the_idempotency_key(
    client: TestClient, keyed: Keyed
) -> None:
    headers = {**keyed.headers, "Idempotency-Key": uuid.uuid4().hex}
    body = {"name": "later", "to": "ada", "payload": {"code": "1"}}
    assert client.post(TRIGGER, headers=headers, json=body).status_code == 400
    workflow(keyed.organisation_id, "later", DELAYED)
    subscriber(keyed.organisation_id, "ada")
    assert client.post(TRIGGER, headers=headers, json=body).status_code == 201

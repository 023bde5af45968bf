"""The subscribers, preferences and credentials routers against PostgreSQL: Novu's shapes, the
upsert, cursor pages, erasure, and one organisation's key never reaching another's rows."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dispatcher.api.keys import create_key
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import Delivery, DeliveryStatus, Notification, Preference, Subscriber
from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.notify_support import EMAIL_STEP, subscriber, workflow

SUBSCRIBERS = "/v2/subscribers"
DELAYED = [{"kind": "delay", "config": {"seconds": 3600}}, EMAIL_STEP]
REQUIRED = {"_id", "_organizationId", "_environmentId", "subscriberId", "deleted", "createdAt",
            "updatedAt"}  # fmt: skip


@pytest.fixture
def other(postgres_url: str) -> Keyed:
    organisation = create_organisation(f"Other {uuid.uuid4().hex[:6]}")
    return Keyed(organisation, create_key(organisation, "other").key)


def stored(organisation_id: uuid.UUID, external_id: str) -> Subscriber | None:
    with database().session() as session:
        return session.scalars(
            select(Subscriber).where(
                Subscriber.organisation_id == organisation_id,
                Subscriber.external_id == external_id,
            )
        ).one_or_none()


def test_create_answers_201_with_novus_required_fields_and_upserts(
    client: TestClient, keyed: Keyed
) -> None:
    answer = client.post(
        SUBSCRIBERS,
        headers=keyed.headers,
        json={"subscriberId": "ada", "firstName": "Ada", "email": "ada@example.com",
              "phone": "+15555550100", "avatar": "https://x/a.png", "data": {"plan": "pro"}},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    body = answer.json()["data"]
    assert set(body) >= REQUIRED
    assert (body["subscriberId"], body["firstName"], body["deleted"]) == ("ada", "Ada", False)
    assert body["_organizationId"] == str(keyed.organisation_id)
    again = client.post(
        SUBSCRIBERS, headers=keyed.headers, json={"subscriberId": "ada", "lastName": "Lovelace"}
    )
    assert again.status_code == 201
    assert (again.json()["data"]["firstName"], again.json()["data"]["lastName"]) == (
        "Ada", "Lovelace",
    )  # fmt: skip
    assert again.json()["data"]["_id"] == body["_id"]
    refused = client.post(
        f"{SUBSCRIBERS}?failIfExists=true", headers=keyed.headers, json={"subscriberId": "ada"}
    )
    assert refused.status_code == 422
    assert list(refused.json()["errors"]) == ["subscriberId"]


def test_bad_fields_are_422_naming_them_in_novus_spelling(client: TestClient, keyed: Keyed) -> None:
    answer = client.post(
        SUBSCRIBERS,
        headers=keyed.headers,
        json={"subscriberId": "bo", "email": "not-an-address", "phone": "12", "firstName": ""},
    )
    assert answer.status_code == 422
    assert set(answer.json()["errors"]) == {"email", "phone", "firstName"}
    missing = client.post(SUBSCRIBERS, headers=keyed.headers, json={"email": "a@example.com"})
    assert missing.status_code == 422
    assert list(missing.json()["errors"]) == ["subscriberId"]
    assert stored(keyed.organisation_id, "bo") is None


def test_search_pages_by_cursor_and_filters(client: TestClient, keyed: Keyed) -> None:
    for n in range(5):
        subscriber(keyed.organisation_id, f"s{n}", first_name=f"Name{n}")
    first = client.get(SUBSCRIBERS, headers=keyed.headers, params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [row["subscriberId"] for row in page["data"]] == ["s4", "s3"]
    assert (page["totalCount"], page["totalCountCapped"], page["previous"]) == (5, False, None)
    second = client.get(
        SUBSCRIBERS, headers=keyed.headers, params={"limit": 2, "after": page["next"]}
    ).json()
    assert [row["subscriberId"] for row in second["data"]] == ["s2", "s1"]
    back = client.get(
        SUBSCRIBERS, headers=keyed.headers, params={"limit": 2, "before": second["previous"]}
    ).json()
    assert [row["subscriberId"] for row in back["data"]] == ["s4", "s3"]
    ascending = client.get(
        SUBSCRIBERS, headers=keyed.headers, params={"orderDirection": "ASC", "limit": 1}
    ).json()
    assert [row["subscriberId"] for row in ascending["data"]] == ["s0"]
    including = client.get(
        SUBSCRIBERS, headers=keyed.headers,
        params={"limit": 2, "after": page["next"], "includeCursor": "true"},
    ).json()  # fmt: skip
    assert [row["subscriberId"] for row in including["data"]] == ["s3", "s2"]
    client.patch(f"{SUBSCRIBERS}/s0", headers=keyed.headers, json={"locale": "fr"})
    touched = client.get(
        SUBSCRIBERS, headers=keyed.headers, params={"orderBy": "updatedAt", "limit": 1}
    ).json()
    assert [row["subscriberId"] for row in touched["data"]] == ["s0"]
    unknown_order = client.get(SUBSCRIBERS, headers=keyed.headers, params={"orderBy": "email"})
    assert unknown_order.status_code == 422 and list(unknown_order.json()["errors"]) == ["orderBy"]
    by_email = client.get(SUBSCRIBERS, headers=keyed.headers, params={"email": "S3@EXAMPLE"}).json()
    assert [row["subscriberId"] for row in by_email["data"]] == ["s3"]
    by_name = client.get(SUBSCRIBERS, headers=keyed.headers, params={"name": "name1"}).json()
    assert [row["subscriberId"] for row in by_name["data"]] == ["s1"]
    wildcard = client.get(SUBSCRIBERS, headers=keyed.headers, params={"subscriberId": "%"}).json()
    assert wildcard["data"] == []
    bad = client.get(SUBSCRIBERS, headers=keyed.headers, params={"after": "garbage!"})
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["after"]
    too_many = client.get(SUBSCRIBERS, headers=keyed.headers, params={"limit": 1000})
    assert too_many.status_code == 422 and list(too_many.json()["errors"]) == ["limit"]


def test_get_patch_and_another_organisations_key_reads_404(
    client: TestClient, keyed: Keyed, other: Keyed
) -> None:
    subscriber(keyed.organisation_id, "ada", first_name="Ada")
    got = client.get(f"{SUBSCRIBERS}/ada", headers=keyed.headers)
    assert got.status_code == 200 and got.json()["data"]["firstName"] == "Ada"
    patched = client.patch(
        f"{SUBSCRIBERS}/ada", headers=keyed.headers, json={"lastName": "L", "locale": "en-GB"}
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["data"]["firstName"], patched.json()["data"]["lastName"]) == ("Ada", "L")
    bad = client.patch(f"{SUBSCRIBERS}/ada", headers=keyed.headers, json={"email": "nope"})
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["email"]
    missing = client.get(f"{SUBSCRIBERS}/nobody", headers=keyed.headers)
    for method in ("get", "delete"):
        foreign = client.request(method, f"{SUBSCRIBERS}/ada", headers=other.headers)
        assert foreign.status_code == 404
        assert foreign.json()["message"] == missing.json()["message"].replace("nobody", "ada")
    assert client.patch(f"{SUBSCRIBERS}/ada", headers=other.headers, json={}).status_code == 404
    assert client.get(SUBSCRIBERS, headers=other.headers).json()["data"] == []
    assert stored(keyed.organisation_id, "ada") is not None


def test_delete_erases_the_person_cancels_what_was_pending_and_keeps_the_record(
    client: TestClient, keyed: Keyed
) -> None:
    workflow(keyed.organisation_id, "later", DELAYED)
    workflow(keyed.organisation_id, "code", [EMAIL_STEP])
    row_id = subscriber(keyed.organisation_id, "ada", first_name="Ada", phone="+15555550100")
    subscriber(keyed.organisation_id, "bo")
    client.put(
        "/v1/subscribers/ada/credentials", headers=keyed.headers,
        json={"providerId": "fcm", "credentials": {"deviceTokens": ["t1"]}},
    )  # fmt: skip
    client.post("/v2/topics", headers=keyed.headers, json={"key": "team"})
    client.post(
        "/v2/topics/team/subscriptions", headers=keyed.headers, json={"subscriberIds": ["ada"]}
    )
    client.patch(
        f"{SUBSCRIBERS}/ada/preferences", headers=keyed.headers, json={"channels": {"sms": False}}
    )
    for transaction_id in ("t-del", "t-other"):
        trigger = client.post(
            "/v1/events/trigger",
            headers=keyed.headers,
            json={"name": "later", "to": ["ada", "bo"], "transactionId": transaction_id,
                  "payload": {"code": "1", "secret_note": "Ada's"}},
        )  # fmt: skip
        assert trigger.status_code == 201
    answer = client.delete(f"{SUBSCRIBERS}/ada", headers=keyed.headers)
    assert answer.status_code == 200
    assert answer.json() == {"data": {"acknowledged": True, "status": "deleted"}}
    with database().session() as session:
        tombstone = session.get(Subscriber, row_id)
        assert tombstone is not None
        assert tombstone.external_id == f"erased:{row_id}"
        assert (tombstone.first_name, tombstone.email, tombstone.phone, tombstone.channels,
                tombstone.data) == (None, None, None, {}, {})  # fmt: skip
        theirs = session.execute(
            select(Delivery.status, Notification.payload)
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(Notification.subscriber_id == row_id)
        ).all()
        assert [(status, payload) for status, payload in theirs] == [
            (DeliveryStatus.CANCELLED, {})
        ] * 2
        others = session.scalars(
            select(Delivery.status)
            .join(Notification, Notification.id == Delivery.notification_id)
            .join(Subscriber, Subscriber.id == Notification.subscriber_id)
            .where(
                Subscriber.organisation_id == keyed.organisation_id, Subscriber.external_id == "bo"
            )
        ).all()
        assert others == [DeliveryStatus.QUEUED] * 2
        left = session.scalar(
            select(func.count()).select_from(Preference).where(Preference.subscriber_id == row_id)
        )
    assert left == 0
    assert client.get(f"{SUBSCRIBERS}/ada", headers=keyed.headers).status_code == 404
    assert client.get(f"{SUBSCRIBERS}/erased:{row_id}", headers=keyed.headers).status_code == 404
    listed = client.get(SUBSCRIBERS, headers=keyed.headers).json()
    assert [row["subscriberId"] for row in listed["data"]] == ["bo"]
    members = client.get("/v2/topics/team/subscriptions", headers=keyed.headers).json()
    assert members["data"] == []
    again = client.post(SUBSCRIBERS, headers=keyed.headers, json={"subscriberId": "ada"})
    assert again.status_code == 201 and again.json()["data"]["_id"] != str(row_id)
    broadcast = client.post(
        "/v1/events/trigger/broadcast", headers=keyed.headers,
        json={"name": "code", "payload": {"code": "2"}, "transactionId": "all"},
    )  # fmt: skip
    assert broadcast.status_code == 201, broadcast.text
    with database().session() as session:
        reached = session.scalars(
            select(Subscriber.external_id)
            .join(Notification, Notification.subscriber_id == Subscriber.id)
            .where(Notification.transaction_id == "all",
                   Notification.organisation_id == keyed.organisation_id)
        ).all()  # fmt: skip
    assert sorted(reached) == ["ada", "bo"]


def test_credentials_set_append_and_delete_the_channels_address(
    client: TestClient, keyed: Keyed, other: Keyed
) -> None:
    subscriber(keyed.organisation_id, "ada")
    path = "/v1/subscribers/ada/credentials"
    put = client.put(
        path, headers=keyed.headers,
        json={"providerId": "fcm", "credentials": {"deviceTokens": ["t1"]}},
    )  # fmt: skip
    assert put.status_code == 200, put.text
    assert set(put.json()["data"]) >= REQUIRED
    client.patch(
        path, headers=keyed.headers,
        json={"providerId": "fcm", "credentials": {"deviceTokens": ["t1", "t2"]}},
    )  # fmt: skip
    client.put(
        path, headers=keyed.headers,
        json={"providerId": "msteams", "credentials": {"webhookUrl": "https://hooks.example.com/x"}},
    )  # fmt: skip
    row = stored(keyed.organisation_id, "ada")
    assert row is not None
    assert row.channels["push"] == {"provider": "fcm", "device_tokens": ["t1", "t2"]}
    assert row.channels["chat"] == {
        "provider": "teams",
        "webhook_url": "https://hooks.example.com/x",
    }
    refused = client.put(
        path, headers=keyed.headers,
        json={"providerId": "sendgrid", "credentials": {"deviceTokens": ["t"]}},
    )  # fmt: skip
    assert refused.status_code == 422 and list(refused.json()["errors"]) == ["providerId"]
    no_url = client.put(
        path, headers=keyed.headers,
        json={"providerId": "slack", "credentials": {"webhookUrl": "ftp://x"}},
    )  # fmt: skip
    assert no_url.status_code == 422
    assert list(no_url.json()["errors"]) == ["credentials.webhookUrl"]
    assert client.delete(f"{path}/fcm", headers=other.headers).status_code == 404
    foreign = client.put(
        path, headers=other.headers,
        json={"providerId": "fcm", "credentials": {"deviceTokens": ["stolen"]}},
    )  # fmt: skip
    assert foreign.status_code == 404
    kept = client.delete(f"{path}/slack", headers=keyed.headers)
    assert kept.status_code == 204
    gone = client.delete(f"{path}/fcm", headers=keyed.headers)
    assert gone.status_code == 204
    row = stored(keyed.organisation_id, "ada")
    assert row is not None and "push" not in row.channels and "chat" in row.channels


def test_preferences_read_and_update_per_workflow_and_channel(
    client: TestClient, keyed: Keyed, other: Keyed
) -> None:
    subscriber(keyed.organisation_id, "ada")
    workflow(keyed.organisation_id, "news", [EMAIL_STEP])
    workflow(keyed.organisation_id, "security", [EMAIL_STEP], critical=True)
    path = f"{SUBSCRIBERS}/ada/preferences"
    listed = client.get(path, headers=keyed.headers, params={"criticality": "nonCritical"})
    assert listed.status_code == 200, listed.text
    body = listed.json()["data"]
    assert body["global"]["enabled"] is True
    assert [w["workflow"]["identifier"] for w in body["workflows"]] == ["news"]
    assert body["workflows"][0]["channels"]["email"] is True
    off = client.patch(
        path, headers=keyed.headers, json={"workflowId": "news", "channels": {"email": False}}
    )
    assert off.status_code == 200, off.text
    assert off.json()["data"]["workflows"][0]["channels"]["email"] is False
    assert off.json()["data"]["global"]["channels"]["email"] is True
    globally = client.patch(
        path, headers=keyed.headers, json={"channels": {"sms": False, "in_app": False}}
    )
    channels = globally.json()["data"]["global"]["channels"]
    assert (channels["sms"], channels["in_app"], channels["push"]) == (False, False, True)
    every = client.get(path, headers=keyed.headers, params={"criticality": "all"}).json()["data"]
    security = next(w for w in every["workflows"] if w["workflow"]["identifier"] == "security")
    assert security["channels"] == {"email": True, "sms": None, "in_app": None, "chat": None,
                                    "push": None}  # fmt: skip
    critical = client.patch(
        path, headers=keyed.headers, json={"workflowId": "security", "channels": {"email": False}}
    )
    assert critical.status_code == 422 and list(critical.json()["errors"]) == ["workflowId"]
    unknown = client.patch(path, headers=keyed.headers, json={"workflowId": "nope"})
    assert unknown.status_code == 422 and list(unknown.json()["errors"]) == ["workflowId"]
    assert client.get(path, headers=other.headers).status_code == 404
    with database().session() as session:
        kept = session.scalars(
            select(Preference.enabled).where(Preference.organisation_id == keyed.organisation_id)
        ).all()
    assert sorted(kept) == [False, False, False]

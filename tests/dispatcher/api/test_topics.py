"""The topics router against PostgreSQL: upserts, cursor pages, subscription changes with
Novu's ``meta`` counts, a trigger fanning out to the members, and tenant isolation."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dispatcher.api.keys import create_key
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import Notification, Subscriber
from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.notify_support import EMAIL_STEP, subscriber, workflow

TOPICS = "/v2/topics"
DELAYED = [{"kind": "delay", "config": {"seconds": 3600}}, EMAIL_STEP]


@pytest.fixture
def other(postgres_url: str) -> Keyed:
    organisation = create_organisation(f"Other {uuid.uuid4().hex[:6]}")
    return Keyed(organisation, create_key(organisation, "other").key)


def test_create_upserts_lists_gets_and_deletes(client: TestClient, keyed: Keyed) -> None:
    created = client.post(TOPICS, headers=keyed.headers, json={"key": "news", "name": "News"})
    assert created.status_code == 201, created.text
    body = created.json()["data"]
    assert (body["key"], body["name"]) == ("news", "News") and body["_id"]
    renamed = client.post(TOPICS, headers=keyed.headers, json={"key": "news", "name": "Daily"})
    assert renamed.status_code == 201 and renamed.json()["data"]["_id"] == body["_id"]
    refused = client.post(
        f"{TOPICS}?failIfExists=true", headers=keyed.headers, json={"key": "news"}
    )
    assert refused.status_code == 422 and list(refused.json()["errors"]) == ["key"]
    bad = client.post(TOPICS, headers=keyed.headers, json={"key": "has space"})
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["key"]
    client.post(TOPICS, headers=keyed.headers, json={"key": "alerts"})
    page = client.get(TOPICS, headers=keyed.headers, params={"limit": 1}).json()
    assert [t["key"] for t in page["data"]] == ["alerts"] and page["totalCount"] == 2
    rest = client.get(TOPICS, headers=keyed.headers, params={"after": page["next"]}).json()
    assert [t["key"] for t in rest["data"]] == ["news"] and rest["next"] is None
    assert [t["key"] for t in client.get(TOPICS, headers=keyed.headers,
                                          params={"key": "NEW"}).json()["data"]] == ["news"]  # fmt: skip
    got = client.get(f"{TOPICS}/news", headers=keyed.headers)
    assert got.status_code == 200 and got.json()["data"]["name"] == "Daily"
    deleted = client.delete(f"{TOPICS}/news", headers=keyed.headers)
    assert deleted.status_code == 200 and deleted.json() == {"data": {"acknowledged": True}}
    assert client.get(f"{TOPICS}/news", headers=keyed.headers).status_code == 404


def test_subscriptions_change_with_meta_counts_and_a_trigger_reaches_the_members(
    client: TestClient, keyed: Keyed
) -> None:
    for name in ("ada", "bo", "cy"):
        subscriber(keyed.organisation_id, name)
    client.post(TOPICS, headers=keyed.headers, json={"key": "team"})
    path = f"{TOPICS}/team/subscriptions"
    added = client.post(path, headers=keyed.headers, json={"subscriberIds": ["ada", "bo", "zed"]})
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["meta"] == {"totalCount": 3, "successful": 2, "failed": 1}
    assert [e["subscriberId"] for e in body["errors"]] == ["zed"]
    assert sorted(s["subscriber"]["subscriberId"] for s in body["data"]) == ["ada", "bo"]
    again = client.post(path, headers=keyed.headers, json={"subscriberIds": ["ada", "cy"]}).json()
    assert again["meta"] == {"totalCount": 2, "successful": 2, "failed": 0}
    listed = client.get(path, headers=keyed.headers, params={"limit": 2}).json()
    assert listed["totalCount"] == 3 and len(listed["data"]) == 2 and listed["next"]
    removed = client.request(
        "DELETE", path, headers=keyed.headers, json={"subscriberIds": ["cy", "nobody"]}
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["meta"] == {"totalCount": 2, "successful": 1, "failed": 1}
    assert [s["subscriber"]["subscriberId"] for s in removed.json()["data"]] == ["cy"]
    workflow(keyed.organisation_id, "later", DELAYED)
    trigger = client.post(
        "/v1/events/trigger",
        headers=keyed.headers,
        json={
            "name": "later",
            "to": {"type": "Topic", "topicKey": "team"},
            "transactionId": "tt",
            "payload": {"code": "1"},
        },
    )
    assert trigger.status_code == 201, trigger.text
    with database().session() as session:
        notified = session.scalars(
            select(Subscriber.external_id)
            .join(Notification, Notification.subscriber_id == Subscriber.id)
            .where(Notification.organisation_id == keyed.organisation_id)
        ).all()
    assert sorted(notified) == ["ada", "bo"]
    empty = client.post(path, headers=keyed.headers, json={"subscriberIds": []})
    assert empty.status_code == 422 and list(empty.json()["errors"]) == ["subscriberIds"]


def test_another_organisations_topic_reads_404(
    client: TestClient, keyed: Keyed, other: Keyed
) -> None:
    client.post(TOPICS, headers=keyed.headers, json={"key": "team"})
    subscriber(other.organisation_id, "ada")
    missing = client.get(f"{TOPICS}/nope", headers=other.headers)
    foreign = client.get(f"{TOPICS}/team", headers=other.headers)
    assert foreign.status_code == missing.status_code == 404
    assert client.get(f"{TOPICS}/team/subscriptions", headers=other.headers).status_code == 404
    posted = client.post(
        f"{TOPICS}/team/subscriptions", headers=other.headers, json={"subscriberIds": ["ada"]}
    )
    assert posted.status_code == 404
    assert client.delete(f"{TOPICS}/team", headers=other.headers).status_code == 404
    assert client.get(TOPICS, headers=other.headers).json()["data"] == []
    # The other organisation's subscriber is not one of this organisation's either.
    subscriber(keyed.organisation_id, "bo")
    mixed = client.post(
        f"{TOPICS}/team/subscriptions", headers=keyed.headers, json={"subscriberIds": ["ada"]}
    ).json()
    assert mixed["meta"] == {"totalCount": 1, "successful": 0, "failed": 1}
    assert client.get(f"{TOPICS}/team", headers=keyed.headers).status_code == 200

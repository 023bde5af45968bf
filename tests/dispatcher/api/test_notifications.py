"""The activity router against PostgreSQL: filters and pages, the attempt timeline of a delivery
the real worker failed, its retry, and another organisation's ids answering 404."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispatcher.api.keys import create_key
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.organisations import create_organisation
from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.notify_support import (
    EMAIL_STEP,
    subscriber,
    wait_until_terminal,
    wire,
    workflow,
)

URL = "/v1/notifications"
DELAYED = [{"kind": "delay", "config": {"seconds": 3600}}, EMAIL_STEP]


def trigger(client: TestClient, keyed: Keyed, name: str, to: str, transaction_id: str) -> None:
    answer = client.post(
        "/v1/events/trigger",
        headers=keyed.headers,
        json={"name": name, "to": to, "payload": {"code": "1"}, "transactionId": transaction_id},
    )
    assert answer.status_code == 201, answer.text


def listed(client: TestClient, keyed: Keyed, **query: Any) -> dict[str, Any]:
    answer = client.get(URL, headers=keyed.headers, params=query)
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


def transactions(page: dict[str, Any]) -> list[str]:
    return [item["transactionId"] for item in page["data"]]


def test_list_filters_and_pages_newest_first(client: TestClient, keyed: Keyed) -> None:
    workflow(keyed.organisation_id, "later", DELAYED)
    workflow(keyed.organisation_id, "other", [{"kind": "delay", "config": {"seconds": 3600}},
                                              {**EMAIL_STEP, "kind": "sms"}])  # fmt: skip
    subscriber(keyed.organisation_id, "ada", phone="+15550001")
    subscriber(keyed.organisation_id, "bo")
    started = datetime.now(UTC) - timedelta(seconds=1)
    trigger(client, keyed, "later", "ada", "tx-1")
    trigger(client, keyed, "later", "bo", "tx-2")
    trigger(client, keyed, "other", "ada", "tx-3")

    everything = listed(client, keyed)
    assert transactions(everything) == ["tx-3", "tx-2", "tx-1"]
    assert (everything["hasMore"], everything["page"], everything["pageSize"]) == (False, 0, 10)
    first = everything["data"][2]
    assert (first["_subscriberId"], first["template"]["triggers"][0]["identifier"]) == (
        "ada",
        "later",
    )
    assert first["channels"] == ["email"] and first["status"] == "pending"
    assert [(d["stepKind"], d["status"]) for d in first["deliveries"]] == [("email", "queued")]

    assert transactions(listed(client, keyed, transactionId="tx-2")) == ["tx-2"]
    assert transactions(listed(client, keyed, subscriberIds=["ada"])) == ["tx-3", "tx-1"]
    assert transactions(listed(client, keyed, subscriberId="bo")) == ["tx-2"]
    assert transactions(listed(client, keyed, templates=["other"])) == ["tx-3"]
    assert transactions(listed(client, keyed, channels=["sms"])) == ["tx-3"]
    assert transactions(listed(client, keyed, status="completed")) == []
    assert transactions(listed(client, keyed, after=started.isoformat())) == [
        "tx-3",
        "tx-2",
        "tx-1",
    ]
    assert transactions(listed(client, keyed, before=started.isoformat())) == []

    page0 = listed(client, keyed, page=0, limit=2)
    page1 = listed(client, keyed, page=1, limit=2)
    assert (transactions(page0), page0["hasMore"]) == (["tx-3", "tx-2"], True)
    assert (transactions(page1), page1["hasMore"]) == (["tx-1"], False)

    bad = client.get(URL, headers=keyed.headers, params={"channels": ["fax"]})
    assert bad.status_code == 422 and "channels" in bad.json()["errors"]


def test_another_organisations_notification_answers_404_like_a_missing_one(
    client: TestClient, keyed: Keyed
) -> None:
    workflow(keyed.organisation_id, "later", DELAYED)
    subscriber(keyed.organisation_id, "ada")
    trigger(client, keyed, "later", "ada", "tx-1")
    [mine] = listed(client, keyed)["data"]
    other = Keyed(create_organisation("Other"), "")
    other = Keyed(other.organisation_id, create_key(other.organisation_id, "tests").key)
    assert listed(client, other)["data"] == []
    assert client.get(f"{URL}/{mine['_id']}", headers=keyed.headers).status_code == 200
    for path in (f"{URL}/{mine['_id']}", f"{URL}/{uuid.uuid4()}", f"{URL}/not-an-id"):
        assert client.get(path, headers=other.headers).status_code == 404
    delivery = mine["deliveries"][0]["_id"]
    retry = f"{URL}/{mine['_id']}/deliveries/{delivery}/retry"
    assert client.post(retry, headers=other.headers).status_code == 404
    assert client.post(retry, headers=keyed.headers).status_code == 422, "not failed yet"


@pytest.mark.usefixtures("worker")
def test_retrieve_shows_the_attempt_timeline_and_a_failed_delivery_is_retried(
    client: TestClient, keyed: Keyed, fake_provider: FakeProviderServer
) -> None:
    wiring = wire(fake_provider, keyed.organisation_id, ("primary",),
                  behaviours={"primary": {"default": "401"}})  # fmt: skip
    workflow(keyed.organisation_id, "code", [EMAIL_STEP])
    subscriber(keyed.organisation_id, "ada")
    trigger(client, keyed, "code", "ada", "tx-fail")
    [view] = wait_until_terminal(keyed.organisation_id, "tx-fail")
    assert view.status == "failed"

    [summary] = listed(client, keyed, transactionId="tx-fail")["data"]
    answer = client.get(f"{URL}/{summary['_id']}", headers=keyed.headers)
    assert answer.status_code == 200, answer.text
    assert "SECRET-primary-key" not in answer.text
    [delivery] = answer.json()["data"]["deliveries"]
    assert (delivery["status"], delivery["channel"]) == ("failed", "email")
    [attempt] = delivery["attemptLog"]
    assert (attempt["_integrationId"], attempt["providerId"], attempt["outcome"],
            attempt["httpStatus"]) == (
        str(wiring.integrations["primary"]), "fake-http", "integration_error", 401,
    )  # fmt: skip
    assert attempt["errorClass"] and attempt["latencyMs"] is not None

    fake_provider.configure(wiring.paths["primary"], default="ok")
    retry = f"{URL}/{summary['_id']}/deliveries/{delivery['_id']}/retry"
    retried = client.post(retry, headers=keyed.headers)
    assert retried.status_code == 200, retried.text
    assert retried.json() == {"data": {"_id": delivery["_id"], "status": "queued"}}
    [view] = wait_until_terminal(keyed.organisation_id, "tx-fail")
    assert view.status == "sent"
    after = client.get(f"{URL}/{summary['_id']}", headers=keyed.headers).json()["data"]
    assert [a["outcome"] for a in after["deliveries"][0]["attemptLog"]] == [
        "integration_error", "sent",
    ]  # fmt: skip
    assert client.post(retry, headers=keyed.headers).status_code == 422


def test_messages_are_the_channel_deliveries_in_novus_page(
    client: TestClient, keyed: Keyed
) -> None:
    workflow(keyed.organisation_id, "later", DELAYED)
    workflow(keyed.organisation_id, "hook", [{"kind": "delay", "config": {"seconds": 3600}},
                                             {"kind": "webhook", "template": {"body": "x"}}])  # fmt: skip
    subscriber(keyed.organisation_id, "ada")
    subscriber(keyed.organisation_id, "bo")
    trigger(client, keyed, "later", "ada", "tx-1")
    trigger(client, keyed, "later", "bo", "tx-2")
    trigger(client, keyed, "hook", "ada", "tx-3")
    answer = client.get("/v1/messages", headers=keyed.headers)
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert (page["hasMore"], page["page"], page["pageSize"]) == (False, 0, 10)
    assert [(m["transactionId"], m["_subscriberId"], m["channel"], m["status"],
             m["deliveryStatus"]) for m in page["data"]] == [
        ("tx-2", "bo", "email", "warning", "queued"), ("tx-1", "ada", "email", "warning", "queued"),
    ]  # fmt: skip
    only = client.get("/v1/messages", headers=keyed.headers, params={"subscriberId": "ada"})
    assert [m["transactionId"] for m in only.json()["data"]] == ["tx-1"]
    first = client.get("/v1/messages", headers=keyed.headers, params={"limit": 1}).json()
    assert (len(first["data"]), first["hasMore"]) == (1, True)
    theirs = Keyed(create_organisation("Other"), "")
    theirs = Keyed(theirs.organisation_id, create_key(theirs.organisation_id, "t").key)
    assert client.get("/v1/messages", headers=theirs.headers).json()["data"] == []


def test_messages_are_newest_notification_first_and_its_steps_in_order(
    client: TestClient, keyed: Keyed
) -> None:
    workflow(keyed.organisation_id, "both", [{"kind": "delay", "config": {"seconds": 3600}},
                                             EMAIL_STEP, {**EMAIL_STEP, "kind": "sms"}])  # fmt: skip
    subscriber(keyed.organisation_id, "ada", phone="+15550001")
    for transaction_id in ("tx-1", "tx-2", "tx-3"):
        trigger(client, keyed, "both", "ada", transaction_id)
    page = client.get("/v1/messages", headers=keyed.headers).json()
    assert [(m["transactionId"], m["channel"]) for m in page["data"]] == [
        (transaction_id, channel)
        for transaction_id in ("tx-3", "tx-2", "tx-1")
        for channel in ("email", "sms")
    ]
    second = client.get("/v1/messages", headers=keyed.headers, params={"limit": 4, "page": 1})
    assert [(m["transactionId"], m["channel"]) for m in second.json()["data"]] == [
        ("tx-1", "email"), ("tx-1", "sms"),
    ]  # fmt: skip


def test_a_fetch_step_shows_as_an_http_request_job(client: TestClient, keyed: Keyed) -> None:
    fetch = {"kind": "fetch", "config": {"url": "http://10.9.9.9/u/{{ subscriber.subscriber_id }}"}}
    workflow(keyed.organisation_id, "fetching", [fetch, EMAIL_STEP])
    subscriber(keyed.organisation_id, "ada")
    trigger(client, keyed, "fetching", "ada", "tx-fetch")
    [item] = listed(client, keyed, transactionId="tx-fetch")["data"]
    assert [(d["stepKind"], d["channel"]) for d in item["deliveries"]] == [
        ("fetch", None), ("email", "email"),
    ]  # fmt: skip
    assert [job["type"] for job in item["jobs"]] == ["http_request", "email"]
    assert item["channels"] == ["email"]
    retrieved = client.get(f"{URL}/{item['_id']}", headers=keyed.headers)
    assert retrieved.status_code == 200, retrieved.text
    assert retrieved.json()["data"]["jobs"][0]["providerId"] == "tool-webhook"

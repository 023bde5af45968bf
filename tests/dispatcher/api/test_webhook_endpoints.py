"""``/v1/webhooks/endpoints``: the organisation's outbound webhook endpoints."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from dispatcher.api.keys import create_key
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from tests.dispatcher.api.conftest import Keyed

ENDPOINTS = "/v1/webhooks/endpoints"
URL = "http://127.0.0.1:9/hooks"


def created(client: TestClient, keyed: Keyed, **body: Any) -> dict[str, Any]:
    response = client.post(
        ENDPOINTS, json={"url": URL, "eventTypes": ["message.sent"], **body}, headers=keyed.headers
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_create_generates_a_secret_shown_once_and_never_again(
    client: TestClient, keyed: Keyed
) -> None:
    data = created(client, keyed, eventTypes=["message.sent", "message.delivered"])
    assert data["secret"].startswith("whsec_") and len(data["secret"]) > 30
    assert data["url"] == URL
    assert data["eventTypes"] == ["message.sent", "message.delivered"]
    assert data["enabled"] is True
    one = client.get(f"{ENDPOINTS}/{data['_id']}", headers=keyed.headers)
    listed = client.get(ENDPOINTS, headers=keyed.headers)
    changed = client.patch(
        f"{ENDPOINTS}/{data['_id']}", json={"secret": "s" * 32}, headers=keyed.headers
    )
    for response in (one, listed, changed):
        assert response.status_code == 200, response.text
        assert "secret" not in response.text
        assert data["secret"] not in response.text
    assert [item["_id"] for item in listed.json()["data"]] == [data["_id"]]


def test_a_given_secret_is_kept_and_sealed_at_rest(client: TestClient, keyed: Keyed) -> None:
    secret = "my-own-secret-of-some-length"
    data = created(client, keyed, secret=secret)
    assert data["secret"] == secret
    with database().session() as session:
        raw = session.execute(
            text("SELECT secret FROM webhook_endpoints WHERE id = :id"), {"id": data["_id"]}
        ).scalar_one()
    assert secret not in raw


def test_patch_changes_the_fields_given(client: TestClient, keyed: Keyed) -> None:
    data = created(client, keyed)
    response = client.patch(
        f"{ENDPOINTS}/{data['_id']}",
        json={"eventTypes": ["message.read", "message.seen"], "enabled": False},
        headers=keyed.headers,
    )
    assert response.status_code == 200, response.text
    changed = response.json()["data"]
    assert changed["eventTypes"] == ["message.read", "message.seen"]
    assert changed["enabled"] is False
    assert changed["url"] == URL


def test_delete_removes_it(client: TestClient, keyed: Keyed) -> None:
    data = created(client, keyed)
    response = client.delete(f"{ENDPOINTS}/{data['_id']}", headers=keyed.headers)
    assert response.status_code == 200
    assert response.json()["data"] == {"_id": data["_id"], "deleted": True}
    assert client.get(f"{ENDPOINTS}/{data['_id']}", headers=keyed.headers).status_code == 404
    assert client.delete(f"{ENDPOINTS}/{data['_id']}", headers=keyed.headers).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"url": "ftp://example.com/x"}, "url", "http"),
        ({"url": "not a url"}, "url", "http"),
        ({"url": "http://10.1.2.3/hook"}, "url", "URL guard"),
        ({"url": "http://169.254.169.254/latest"}, "url", "URL guard"),
        ({"eventTypes": ["message.exploded"]}, "eventTypes", "message.exploded"),
        ({"eventTypes": []}, "eventTypes", "at least one"),
        ({"secret": "short"}, "secret", "characters"),
    ],
)
def test_bad_fields_are_422_naming_the_field(
    client: TestClient, keyed: Keyed, body: dict[str, Any], field: str, words: str
) -> None:
    payload = {"url": URL, "eventTypes": ["message.sent"], **body}
    response = client.post(ENDPOINTS, json=payload, headers=keyed.headers)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert field in errors, errors
    assert words in " ".join(errors[field]["messages"])
    if "secret" in body:
        assert body["secret"] not in response.text
    assert client.get(ENDPOINTS, headers=keyed.headers).json()["data"] == []


def test_patch_refuses_a_bad_url_naming_it(client: TestClient, keyed: Keyed) -> None:
    data = created(client, keyed)
    response = client.patch(
        f"{ENDPOINTS}/{data['_id']}", json={"url": "http://192.168.0.1/"}, headers=keyed.headers
    )
    assert response.status_code == 422
    assert "url" in response.json()["errors"]


def test_another_organisations_endpoint_is_404(client: TestClient, keyed: Keyed) -> None:
    data = created(client, keyed)
    other_id = create_organisation(f"Other {uuid.uuid4().hex[:6]}")
    stranger = {"Authorization": f"ApiKey {create_key(other_id, 'tests').key}"}
    path = f"{ENDPOINTS}/{data['_id']}"
    assert client.get(path, headers=stranger).status_code == 404
    assert client.patch(path, json={"enabled": False}, headers=stranger).status_code == 404
    assert client.delete(path, headers=stranger).status_code == 404
    assert client.get(f"{path}/deliveries", headers=stranger).status_code == 404
    assert client.get(ENDPOINTS, headers=stranger).json()["data"] == []
    assert client.get(path, headers=keyed.headers).json()["data"]["enabled"] is True
    assert client.get(f"{ENDPOINTS}/not-an-id", headers=keyed.headers).status_code == 404


def test_deliveries_of_a_new_endpoint_are_empty(client: TestClient, keyed: Keyed) -> None:
    data = created(client, keyed)
    response = client.get(f"{ENDPOINTS}/{data['_id']}/deliveries", headers=keyed.headers)
    assert response.status_code == 200
    assert response.json()["data"] == []

"""Every error answer in Novu's shape: 422 naming the caller's fields, 413, 415, 404, 503 with
Retry-After when the database is down, and 500 without details."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from dispatcher import run_action
from dispatcher.api import create_app
from dispatcher.runtime.resources import reset
from tests.conftest import free_port
from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.api.test_auth import assert_novu_error

TRIGGER = "/v1/events/trigger"


def test_422_names_every_bad_field_by_its_wire_path(client: TestClient, keyed: Keyed) -> None:
    answer = client.post(
        TRIGGER,
        headers=keyed.headers,
        json={"to": ["ada", {"subscriberId": 5}, {"type": "Topic"}, 7], "payload": []},
    )
    assert answer.status_code == 422
    body = answer.json()
    assert_novu_error(body, 422, TRIGGER)
    assert set(body["errors"]) == {"name", "to.1.subscriberId", "to.2.topicKey", "to.3", "payload"}
    assert body["errors"]["to.3"] == {
        "messages": ["must be a subscriber id, a subscriber object or a topic"]
    }


def test_trigger_refusals_are_payload_validation_400s_in_wire_names(
    client: TestClient, keyed: Keyed
) -> None:
    answer = client.post(
        "/v1/events/trigger/bulk",
        headers=keyed.headers,
        json={"events": [{"name": "nope", "to": "ada"}]},
    )
    assert answer.status_code == 400
    body = answer.json()
    assert_novu_error(body, 400, "/v1/events/trigger/bulk")
    assert body["type"] == "PAYLOAD_VALIDATION"
    assert [error["field"] for error in body["errors"]] == ["events.0.name"]


def test_unknown_route_is_a_novu_404(client: TestClient, keyed: Keyed) -> None:
    answer = client.get("/v1/nothing-here", headers=keyed.headers)
    assert answer.status_code == 404
    assert_novu_error(answer.json(), 404, "/v1/nothing-here")


@pytest.fixture
def small_bodies(settings_env: Callable[..., None], redis_url: str) -> Iterator[TestClient]:
    settings_env(api_max_body_bytes=64)
    with TestClient(create_app()) as test_client:
        yield test_client


def test_an_oversized_body_is_413_declared_or_streamed(
    small_bodies: TestClient, keyed: Keyed
) -> None:
    body = b'{"name": "' + b"x" * 100 + b'", "to": "ada"}'
    declared = small_bodies.post(
        TRIGGER, headers={**keyed.headers, "Content-Type": "application/json"}, content=body
    )
    assert declared.status_code == 413
    assert_novu_error(declared.json(), 413, TRIGGER)

    def chunks() -> Iterator[bytes]:
        yield body[:50]
        yield body[50:]

    streamed = small_bodies.post(
        TRIGGER, headers={**keyed.headers, "Content-Type": "application/json"}, content=chunks()
    )
    assert streamed.status_code == 413


def test_a_body_that_is_not_json_is_415(client: TestClient, keyed: Keyed) -> None:
    answer = client.post(
        TRIGGER, headers={**keyed.headers, "Content-Type": "text/plain"}, content=b"name=x"
    )
    assert answer.status_code == 415
    assert_novu_error(answer.json(), 415, TRIGGER)


def test_an_unexpected_error_is_a_bare_500(redis_url: str, keyed: Keyed) -> None:
    app = create_app()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("SECRET-api-key-in-an-exception")

    with TestClient(app, raise_server_exceptions=False) as test_client:
        answer = test_client.get("/boom")
    assert answer.status_code == 500
    assert answer.json()["message"] == "internal server error"
    assert "SECRET" not in answer.text and "Traceback" not in answer.text


def test_a_database_that_cannot_be_reached_is_503_with_retry_after(
    settings_env: Callable[..., None], redis_url: str, keyed: Keyed
) -> None:
    settings_env(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    reset()
    try:
        with TestClient(create_app()) as test_client:
            answer = test_client.delete(f"{TRIGGER}/tx", headers=keyed.headers)
            ready = test_client.get("/readyz")
    finally:
        reset()
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert_novu_error(answer.json(), 503, f"{TRIGGER}/tx")
    assert ready.status_code == 503
    assert ready.json()["database"] == "unavailable"


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["database"] == "ok" and ready.json()["broker"] == "ok"
    assert ready.json()["undecryptableIntegrations"] >= 0


def test_a_body_that_is_not_json_is_422_naming_the_body(client: TestClient, keyed: Keyed) -> None:
    answer = client.post(
        TRIGGER, headers={**keyed.headers, "Content-Type": "application/json"}, content=b"{nope"
    )
    assert answer.status_code == 422
    assert set(answer.json()["errors"]) == {"body"}


def test_payload_keys_keep_the_callers_spelling(client: TestClient, keyed: Keyed) -> None:
    run_action(
        "create_workflow",
        {"key": "w", "name": "w", "steps": [
            {"kind": "email", "template": {"subject": "s", "body": "{{ payload.user_name }}"}},
        ]},
        organisation_id=keyed.organisation_id,
    )  # fmt: skip
    run_action(
        "create_subscriber",
        {"external_id": "ada", "email": "ada@example.com"},
        organisation_id=keyed.organisation_id,
    )
    answer = client.post(TRIGGER, headers=keyed.headers, json={"name": "w", "to": "ada"})
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["payload.user_name"]

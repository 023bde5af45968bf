"""The paths served beside FastAPI's routing answer every request as the routes they stand in
for. The single trigger (:mod:`dispatcher.api.single_trigger`): the same status, body and
rate-limit headers for a trigger written, refused by the producer, refused by the request model,
with a bad key, over the rate, with an Idempotency-Key replayed, and with the database down.
Provider callbacks (:mod:`dispatcher.api.callback_path`): authentic, forged, for no such
integration, unreadable, and with an id the route refuses."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dispatcher.api import create_app
from dispatcher.api.rate_limit import api_rate_store
from dispatcher.runtime.resources import database, reset
from models import Notification
from providers.fake import sign_fake_callback
from tests.conftest import free_port
from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.notify_support import EMAIL_STEP, act, subscriber, workflow

TRIGGER = "/v1/events/trigger"
#: Fields that differ between two answers by design: when, and the transaction id made up.
VOLATILE = ("timestamp", "transactionId")


@pytest.fixture
def both(postgres_url: str, redis_url: str) -> Iterator[tuple[TestClient, TestClient]]:
    api_rate_store.cache_clear()
    with (
        TestClient(create_app(), raise_server_exceptions=False) as fast,
        TestClient(create_app(fast_paths=False), raise_server_exceptions=False) as route,
    ):
        yield fast, route
    api_rate_store.cache_clear()


def comparable(answer: Any) -> tuple[int, Any, dict[str, str]]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    # Retry-After only by its presence: a second later it may be a second shorter.
    headers = {
        name: answer.headers[name] if name != "retry-after" else "present"
        for name in ("content-type", "retry-after", "ratelimit-limit")
        if name in answer.headers
    }
    return answer.status_code, strip(answer.json()), headers


def notifications(organisation_id: uuid.UUID) -> int:
    with database().session() as session:
        query = select(func.count()).where(Notification.organisation_id == organisation_id)
        return int(session.scalar(query) or 0)


CODE = {"code": "7"}
CASES: list[tuple[str, Any, dict[str, str] | None, int]] = [
    ("written", {"name": "hello", "to": "ada", "payload": CODE}, None, 201),
    ("written, snake_case", {"name": "hello", "to": [{"subscriber_id": "ada"}], "payload": CODE}, None, 201),
    ("a payload the templates lack", {"name": "hello", "to": "ada"}, None, 400),
    ("unknown workflow", {"name": "nope", "to": "ada", "payload": CODE}, None, 400),
    ("bad recipient", {"name": "hello", "to": [{"topicKey": 5}], "payload": CODE}, None, 422),
    ("no name", {"to": "ada"}, None, 422),
    ("not an object", [1, 2], None, 422),
    ("no key", {"name": "hello", "to": "ada", "payload": CODE}, {}, 401),
    ("unknown key", {"name": "hello", "to": "ada", "payload": CODE}, {"Authorization": "ApiKey nope"}, 401),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "headers", "status"), CASES, ids=[c[0] for c in CASES])
def test_the_same_answer_as_the_route(
    both: tuple[TestClient, TestClient],
    keyed: Keyed,
    case: str,
    body: Any,
    headers: dict[str, str] | None,
    status: int,
) -> None:
    workflow(keyed.organisation_id, "hello", [EMAIL_STEP])
    subscriber(keyed.organisation_id, "ada", email="ada@example.com")
    fast, route = both
    sent = keyed.headers if headers is None else headers
    before = notifications(keyed.organisation_id)
    first = fast.post(TRIGGER, headers=sent, json=body)
    written = notifications(keyed.organisation_id) - before
    second = route.post(TRIGGER, headers=sent, json=body)
    assert first.status_code == status, first.text
    assert comparable(first) == comparable(second), (first.text, second.text)
    assert written == (1 if status == 201 else 0)
    assert notifications(keyed.organisation_id) - before == 2 * written
    if first.status_code == 201:
        assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(first.headers)


def test_over_the_rate_the_same_429(
    both: tuple[TestClient, TestClient], keyed: Keyed, settings_env: Callable[..., None]
) -> None:
    settings_env(api_rate_limit_per_second=0.01, api_rate_limit_burst=2)
    workflow(keyed.organisation_id, "hello", [EMAIL_STEP])
    subscriber(keyed.organisation_id, "ada", email="ada@example.com")
    fast, route = both
    body = {"name": "hello", "to": "ada", "payload": CODE}
    codes = [fast.post(TRIGGER, headers=keyed.headers, json=body).status_code for _ in range(2)]
    assert codes == [201, 201]
    refused_fast = fast.post(TRIGGER, headers=keyed.headers, json=body)
    refused_route = route.post(TRIGGER, headers=keyed.headers, json=body)
    assert comparable(refused_fast) == comparable(refused_route)
    assert refused_fast.status_code == 429
    waits = [int(refused_fast.headers["retry-after"]), int(refused_route.headers["retry-after"])]
    assert abs(waits[0] - waits[1]) <= 1, waits
    assert notifications(keyed.organisation_id) == 2


def test_an_idempotency_key_replays_the_first_answer(
    both: tuple[TestClient, TestClient], keyed: Keyed
) -> None:
    workflow(keyed.organisation_id, "hello", [EMAIL_STEP])
    subscriber(keyed.organisation_id, "ada", email="ada@example.com")
    fast, _ = both
    headers = {**keyed.headers, "Idempotency-Key": "order-7"}
    body = {"name": "hello", "to": "ada", "payload": CODE}
    first = fast.post(TRIGGER, headers=headers, json=body)
    again = fast.post(TRIGGER, headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.json()["data"]["transactionId"].startswith("idem-")
    assert notifications(keyed.organisation_id) == 1
    other = fast.post(
        TRIGGER, headers=headers, json={"name": "hello", "to": "ada", "payload": {"x": 1}}
    )
    assert other.status_code == 422


def test_the_database_down_is_the_same_503(
    both: tuple[TestClient, TestClient], keyed: Keyed, settings_env: Callable[..., None]
) -> None:
    workflow(keyed.organisation_id, "hello", [EMAIL_STEP])
    subscriber(keyed.organisation_id, "ada", email="ada@example.com")
    fast, route = both
    body = {"name": "hello", "to": "ada", "payload": CODE}
    warm = fast.post(TRIGGER, headers=keyed.headers, json=body)
    assert warm.status_code == 201, warm.text  # the key is known
    settings_env(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    reset()
    try:
        down_fast = fast.post(TRIGGER, headers=keyed.headers, json=body)
        down_route = route.post(TRIGGER, headers=keyed.headers, json=body)
    finally:
        reset()
    assert comparable(down_fast) == comparable(down_route)
    assert down_fast.status_code == 503 and down_fast.headers["retry-after"] == "5"


CALLBACK_SECRET = "whsec-fast-path"


def callback_cases(integration_id: str) -> list[tuple[str, str, bytes, dict[str, str], int]]:
    events = json.dumps([{"id": f"e-{uuid.uuid4().hex}", "messageId": "no-such-message",
                          "status": "delivered", "timestamp": 1_800_000_000}]).encode()  # fmt: skip
    unreadable = b"not json at all"
    path = f"/v1/webhooks/providers/{integration_id}"
    return [
        ("authentic", path, events, sign_fake_callback(CALLBACK_SECRET, events), 200),
        ("authentic, a query string", path + "?source=sendgrid", events,
         sign_fake_callback(CALLBACK_SECRET, events), 200),
        ("forged", path, events, sign_fake_callback("another secret", events), 401),
        ("no such integration", f"/v1/webhooks/providers/{uuid.uuid4()}", events,
         sign_fake_callback(CALLBACK_SECRET, events), 401),
        ("unreadable", path, unreadable, sign_fake_callback(CALLBACK_SECRET, unreadable), 400),
        ("an id too long", "/v1/webhooks/providers/" + "x" * 101, events, {}, 422),
    ]  # fmt: skip


def test_provider_callbacks_the_same_answers_as_the_route(
    both: tuple[TestClient, TestClient], organisation_id: uuid.UUID
) -> None:
    integration_id = act(
        organisation_id,
        "create_integration",
        {"name": "mail", "provider": "fake_http", "channel_type": "email",
         "credentials": {"api_key": "k", "webhook_secret": CALLBACK_SECRET},
         "settings": {"url": "http://127.0.0.1:9/unused"}},
    )  # fmt: skip
    fast, route = both
    for case, path, body, headers, status in callback_cases(str(integration_id)):
        first = fast.post(path, content=body, headers=headers)
        second = route.post(path, content=body, headers=headers)
        assert first.status_code == status, (case, first.text)
        assert comparable(first) == comparable(second), (case, first.text, second.text)
    empty = fast.post(
        f"/v1/webhooks/providers/{integration_id}",
        content=b"[]",
        headers=sign_fake_callback(CALLBACK_SECRET, b"[]"),
    )
    assert empty.json() == {"data": {"received": 0}}

"""Provider callbacks end to end: the real ``dispatcher api`` process receives them, the
session's real worker applies them, the local fake provider sends (and calls back).

Every wait below polls the database for the state it expects, within a generous bound.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from dispatcher import trigger
from dispatcher.api.keys import create_key
from dispatcher.cli.main import main
from dispatcher.dev.api_process import running_api
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.runtime.resources import database
from models import Delivery, DeliveryEventRecord, Notification, Suppression
from providers.fake import sign_fake_callback
from tests.conftest import DATA_DIR, free_port
from tests.dispatcher.notify_support import EMAIL_STEP, act, subscriber, wait_until_terminal
from tests.dispatcher.notify_support import workflow as make_workflow

pytestmark = pytest.mark.usefixtures("worker")

SECRET = "whsec-e2e-secret"


@pytest.fixture(scope="module")
def api_url(postgres_url: str, redis_url: str) -> Iterator[str]:
    port = free_port()
    with running_api(port=port, log_file=DATA_DIR / "api.log", start_timeout=120):
        yield f"http://127.0.0.1:{port}"


class World:
    def __init__(self, fake: FakeProviderServer, organisation_id: uuid.UUID, api_url: str):
        self.fake, self.organisation_id, self.api_url = fake, organisation_id, api_url
        self.path = f"cb-{uuid.uuid4().hex[:10]}"
        self.integration_id = act(
            organisation_id,
            "create_integration",
            {
                "name": "mail", "provider": "fake_http", "channel_type": "email",
                "credentials": {"api_key": "SECRET-api-key", "webhook_secret": SECRET},
                "settings": {"url": f"{fake.url}/{self.path}"}, "is_primary": True,
            },
        )  # fmt: skip
        self.callback_url = f"{api_url}/v1/webhooks/providers/{self.integration_id}"
        self.headers = {"Authorization": f"ApiKey {create_key(organisation_id, 't').key}"}
        make_workflow(organisation_id, "code", [EMAIL_STEP])

    def send(self, external_id: str) -> Any:
        receipt = trigger(self.organisation_id, "code", external_id, {"code": "1"})
        [view] = wait_until_terminal(self.organisation_id, receipt.transaction_id)
        return view

    def requests_to_fake(self) -> int:
        return int(self.fake.state.stats()["by_path"].get(self.path, 0))

    def post(self, events: list[dict[str, Any]], secret: str = SECRET) -> httpx.Response:
        body = json.dumps(events).encode()
        return httpx.post(self.callback_url, content=body,
                          headers=sign_fake_callback(secret, body), timeout=10)  # fmt: skip


@pytest.fixture
def world(fake_provider: FakeProviderServer, organisation_id: uuid.UUID, api_url: str) -> World:
    return World(fake_provider, organisation_id, api_url)


def fake_event(message_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {"id": fields.pop("id", uuid.uuid4().hex), "messageId": message_id,
            "status": status, "timestamp": time.time(), **fields}  # fmt: skip


def view_transaction(row: Delivery) -> str:
    with database().session() as session:
        notification = session.get(Notification, row.notification_id)
        assert notification is not None
        return notification.transaction_id


def delivery(delivery_id: str) -> Delivery:
    with database().session() as session:
        row = session.get(Delivery, uuid.UUID(delivery_id))
        assert row is not None
        session.expunge(row)
        return row


def event_count(delivery_id: str, event_id: str | None = None) -> int:
    query = select(func.count()).where(DeliveryEventRecord.delivery_id == uuid.UUID(delivery_id))
    if event_id is not None:
        query = query.where(DeliveryEventRecord.event_id == event_id)
    with database().session() as session:
        return int(session.scalar(query) or 0)


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def test_the_fake_provider_calls_back_and_the_delivery_shows_delivered(world: World) -> None:
    world.fake.configure(world.path, callback_url=world.callback_url, callback_secret=SECRET,
                         callback_delay_ms=200)  # fmt: skip
    subscriber(world.organisation_id, "ada")
    view = world.send("ada")
    assert view.status == "sent"
    eventually(lambda: delivery(view.delivery_id).reported_status is not None, "delivered")
    row = delivery(view.delivery_id)
    assert (row.status.value, row.reported_status and row.reported_status.value) == (
        "sent", "delivered",
    )  # fmt: skip
    assert world.fake.state.callback_errors == []

    # Shown by the activity API and by `dispatcher status`, with the event.
    answer = httpx.get(f"{world.api_url}/v1/notifications/{row.notification_id}",
                       headers=world.headers, timeout=10)  # fmt: skip
    assert answer.status_code == 200
    [shown] = answer.json()["data"]["deliveries"]
    assert (shown["status"], shown["reportedStatus"]) == ("sent", "delivered")
    assert [event["kind"] for event in shown["events"]] == ["delivered"]
    assert shown["reportedAt"]
    status = CliRunner().invoke(
        main, ["status", view_transaction(row), "--org", str(world.organisation_id), "--json"]
    )
    assert status.exit_code == 0, status.output
    [printed] = json.loads(status.output)
    assert (printed["status"], printed["reported_status"]) == ("sent", "delivered")
    assert [event["kind"] for event in printed["events"]] == ["delivered"]
    table = CliRunner().invoke(
        main, ["status", view_transaction(row), "--org", str(world.organisation_id)]
    )
    assert "delivered" in table.output


def test_a_bad_signature_or_an_unknown_integration_is_401_and_changes_nothing(
    world: World,
) -> None:
    subscriber(world.organisation_id, "bo")
    view = world.send("bo")
    message_id = view.provider_message_id
    forged = world.post([fake_event(message_id, "opened")], secret="not-the-secret")
    assert forged.status_code == 401
    assert SECRET not in forged.text
    unknown = httpx.post(
        f"{world.api_url}/v1/webhooks/providers/{uuid.uuid4()}",
        content=b"[]", headers=sign_fake_callback(SECRET, b"[]"), timeout=10,
    )  # fmt: skip
    assert (unknown.status_code, unknown.json()["message"]) == (401, forged.json()["message"])
    not_an_id = httpx.post(f"{world.api_url}/v1/webhooks/providers/x", content=b"[]", timeout=10)
    assert not_an_id.status_code == 401
    # A good callback after the forged one is applied, and the forged one never was.
    marker = fake_event(message_id, "delivered")
    assert world.post([marker]).status_code == 200
    eventually(lambda: event_count(view.delivery_id) == 1, "the good event applied")
    assert delivery(view.delivery_id).reported_status.value == "delivered"  # type: ignore[union-attr]


def test_an_authentic_body_that_cannot_be_read_is_400(world: World) -> None:
    body = b'{"not": "a list"}'
    answer = httpx.post(world.callback_url, content=body,
                        headers=sign_fake_callback(SECRET, body), timeout=10)  # fmt: skip
    assert answer.status_code == 400


def test_a_replayed_event_is_applied_once(world: World) -> None:
    subscriber(world.organisation_id, "cy")
    view = world.send("cy")
    opened = fake_event(view.provider_message_id, "opened", id="evt-replayed")
    assert world.post([opened]).status_code == 200
    # The replay travels with a new event in one callback: one task, one transaction, so once
    # the new one is applied the replay was handled too.
    marker = fake_event(view.provider_message_id, "clicked", url="https://example.com/x")
    assert world.post([opened, marker]).status_code == 200
    eventually(lambda: event_count(view.delivery_id, marker["id"]) == 1, "the click applied")
    assert event_count(view.delivery_id, "evt-replayed") == 1
    assert event_count(view.delivery_id) == 2
    assert delivery(view.delivery_id).reported_status.value == "clicked"  # type: ignore[union-attr]


def test_an_unknown_message_id_is_accepted_logged_and_changes_nothing(world: World) -> None:
    subscriber(world.organisation_id, "di")
    view = world.send("di")
    message_id = f"never-sent-{uuid.uuid4().hex[:8]}"
    answer = world.post([fake_event(message_id, "delivered")])
    assert (answer.status_code, answer.json()) == (200, {"data": {"received": 1}})
    log = DATA_DIR / "worker.log"
    eventually(lambda: message_id in log.read_text(errors="replace"), "the worker logged it")
    assert "no such delivery" in log.read_text(errors="replace")
    assert event_count(view.delivery_id) == 0
    assert delivery(view.delivery_id).reported_status is None


def test_a_hard_bounce_suppresses_the_address_until_lifted(world: World) -> None:
    subscriber(world.organisation_id, "eve", email="Eve@Example.com")
    first = world.send("eve")
    assert first.status == "sent"
    bounce = fake_event(first.provider_message_id, "bounced", recipient="Eve@Example.com",
                        reason="550 5.1.1 user unknown")  # fmt: skip
    assert world.post([bounce]).status_code == 200

    def suppressions() -> list[dict[str, Any]]:
        answer = httpx.get(f"{world.api_url}/v1/suppressions", headers=world.headers,
                           params={"address": "eve@example.com"}, timeout=10)  # fmt: skip
        assert answer.status_code == 200
        return list(answer.json()["data"])

    eventually(lambda: bool(suppressions()), "the address suppressed")
    [suppressed] = suppressions()
    assert (suppressed["channel"], suppressed["address"]) == ("email", "eve@example.com")
    assert suppressed["_sourceDeliveryId"] == first.delivery_id
    asked = world.requests_to_fake()
    skipped = world.send("eve")
    assert (skipped.status, skipped.last_error, skipped.attempts) == ("skipped", "suppressed", 0)
    assert world.requests_to_fake() == asked
    lifted = httpx.delete(f"{world.api_url}/v1/suppressions/{suppressed['_id']}",
                          headers=world.headers, timeout=10)  # fmt: skip
    assert lifted.status_code == 200
    again = world.send("eve")
    assert again.status == "sent"
    assert world.requests_to_fake() == asked + 1
    with database().session() as session:
        left = session.scalar(
            select(func.count()).where(Suppression.organisation_id == world.organisation_id)
        )
    assert left == 0

"""Status-driven routing end to end: the real ``dispatcher api`` process receives the local fake
provider's signed callbacks, the session's real worker (and its beat, which sweeps every half
second) applies them, fails over, waits and skips.

Every wait polls the database for the state it expects, within a generous bound; where a test
shows that something did *not* happen, it first waits until the window in question has passed
and the sweep has run after it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from dispatcher import Ok, run_action, trigger
from dispatcher.dev.api_process import running_api
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.runtime.resources import database
from models import (
    Delivery,
    DeliveryAttempt,
    DeliveryEventRecord,
    DeliveryStatus,
    DeliveryWatch,
    InboxMessage,
    Integration,
    Notification,
)
from models.types import utcnow
from providers.fake import sign_fake_callback
from tests.conftest import DATA_DIR, free_port
from tests.dispatcher.notify_support import act, subscriber, workflow

pytestmark = pytest.mark.usefixtures("worker")

SECRET = "whsec-routing-secret"
SMS = {"kind": "sms", "template": {"body": "Code {{ payload.code }}"}}
EMAIL = {"kind": "email", "template": {"subject": "Hi", "body": "Code {{ payload.code }}"}}
IN_APP = {"kind": "in_app", "template": {"body": "Code {{ payload.code }}"}}


@pytest.fixture(scope="module")
def api_url(postgres_url: str, redis_url: str) -> Iterator[str]:
    port = free_port()
    with running_api(port=port, log_file=DATA_DIR / "api-routing.log", start_timeout=120):
        yield f"http://127.0.0.1:{port}"


class Org:
    """An organisation whose integrations post to their own paths of the fake provider."""

    def __init__(self, fake: FakeProviderServer, organisation_id: uuid.UUID, api_url: str):
        self.fake, self.organisation_id, self.api_url = fake, organisation_id, api_url
        self.paths: dict[str, str] = {}
        self.ids: dict[str, uuid.UUID] = {}
        subscriber(organisation_id, "ada", phone="+15550100", first_name="Ada")

    def integration(
        self, name: str, channel: str, callback: str | None, priority: int = 0
    ) -> uuid.UUID:
        """A fake_http integration that calls back with ``callback`` after each message it
        accepts (never, with ``None``)."""
        path = f"{self.organisation_id.hex[:12]}-{name}"
        self.paths[name] = path
        self.ids[name] = act(
            self.organisation_id,
            "create_integration",
            {
                "name": name, "provider": "fake_http", "channel_type": channel,
                "credentials": {"api_key": f"SECRET-{name}", "webhook_secret": SECRET},
                "settings": {"url": f"{self.fake.url}/{path}"}, "is_primary": priority == 0,
                "priority": priority,
            },
        )  # fmt: skip
        behaviour: dict[str, Any] = {}
        if callback is not None:
            behaviour = {"callback_url": self.callback_url(name), "callback_secret": SECRET,
                         "callback_status": callback, "callback_delay_ms": 200}  # fmt: skip
        self.fake.configure(path, **behaviour)
        return self.ids[name]

    def callback_url(self, name: str) -> str:
        return f"{self.api_url}/v1/webhooks/providers/{self.ids[name]}"

    def requests(self, name: str) -> int:
        return int(self.fake.state.stats()["by_path"].get(self.paths[name], 0))

    def trigger(self, key: str) -> str:
        return trigger(self.organisation_id, key, "ada", {"code": "42"}).transaction_id

    def post_event(self, name: str, message_id: str, status: str) -> None:
        event = {"id": uuid.uuid4().hex, "messageId": message_id, "status": status,
                 "timestamp": time.time()}  # fmt: skip
        body = json.dumps([event]).encode()
        answer = httpx.post(self.callback_url(name), content=body,
                            headers=sign_fake_callback(SECRET, body), timeout=10)  # fmt: skip
        assert answer.status_code < 300, answer.text


@pytest.fixture
def org(fake_provider: FakeProviderServer, organisation_id: uuid.UUID, api_url: str) -> Org:
    return Org(fake_provider, organisation_id, api_url)


def deliveries(organisation_id: uuid.UUID, transaction_id: str) -> list[Delivery]:
    with database().session() as session:
        rows = list(
            session.scalars(
                select(Delivery)
                .join(Notification, Notification.id == Delivery.notification_id)
                .where(Notification.organisation_id == organisation_id,
                       Notification.transaction_id == transaction_id)
                .order_by(Delivery.step_position)
            )
        )  # fmt: skip
        session.expunge_all()
    return rows


def step(org: Org, transaction_id: str, position: int) -> Delivery:
    return next(
        d for d in deliveries(org.organisation_id, transaction_id) if d.step_position == position
    )


def attempts(delivery_id: uuid.UUID) -> list[tuple[str, str, str | None]]:
    """(integration name, outcome, error class) of every attempt, in order."""
    with database().session() as session:
        rows = session.execute(
            select(Integration.name, DeliveryAttempt.outcome, DeliveryAttempt.error_class)
            .join(Integration, Integration.id == DeliveryAttempt.integration_id)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.created_at)
        ).all()
    return [(name, outcome.value, error_class) for name, outcome, error_class in rows]


def watches(delivery_id: uuid.UUID) -> list[DeliveryWatch]:
    with database().session() as session:
        rows = list(
            session.scalars(
                select(DeliveryWatch)
                .where(DeliveryWatch.delivery_id == delivery_id)
                .order_by(DeliveryWatch.sent_at)
            )
        )
        session.expunge_all()
    return rows


def eventually(check: Callable[[], bool], what: str, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def sweeps_after(moment: Any, sweeps: float = 4) -> None:
    """Sleep until ``moment`` has passed by a few sweep intervals (0.5 s in tests)."""
    while utcnow() < moment:
        time.sleep(0.1)
    time.sleep(sweeps * 0.5)


def confirmed(within: float) -> dict[str, Any]:
    return {**SMS, "config": {"success": {"delivered_within": within}}}


def test_an_sms_reported_undelivered_is_sent_through_the_next_integration(org: Org) -> None:
    org.integration("first", "sms", callback="undelivered", priority=0)
    org.integration("second", "sms", callback="delivered", priority=1)
    workflow(org.organisation_id, "code", [confirmed(60)])
    transaction = org.trigger("code")

    def delivered_by_second() -> bool:
        row = step(org, transaction, 0)
        return row.integration_id == org.ids["second"] and row.reported_status is not None

    eventually(delivered_by_second, "sent again through the second integration, delivered")
    row = step(org, transaction, 0)
    assert (row.status, row.reported_status and row.reported_status.value) == (
        DeliveryStatus.SENT, "delivered",
    )  # fmt: skip
    assert attempts(row.id) == [
        ("first", "sent", None), ("first", "unconfirmed", "undelivered"), ("second", "sent", None),
    ]  # fmt: skip
    eventually(lambda: [w.state.value for w in watches(row.id)] == ["failed_over", "delivered"],
               "the second send confirmed")  # fmt: skip
    assert (org.requests("first"), org.requests("second")) == (1, 1)


def test_a_delivery_reported_in_time_is_not_sent_again(org: Org) -> None:
    org.integration("first", "sms", callback="delivered", priority=0)
    org.integration("second", "sms", callback="delivered", priority=1)
    workflow(org.organisation_id, "code", [confirmed(2)])
    transaction = org.trigger("code")
    eventually(lambda: step(org, transaction, 0).reported_status is not None, "delivered")
    row = step(org, transaction, 0)
    [watch] = watches(row.id)
    assert watch.state.value == "delivered"
    sweeps_after(watch.wait_until)
    assert (org.requests("first"), org.requests("second")) == (1, 0)
    assert attempts(row.id) == [("first", "sent", None)]
    assert step(org, transaction, 0).integration_id == org.ids["first"]


def test_no_report_within_the_window_fails_over_and_a_late_report_changes_nothing(
    org: Org,
) -> None:
    org.integration("first", "sms", callback=None, priority=0)
    org.integration("second", "sms", callback="delivered", priority=1)
    workflow(org.organisation_id, "code", [confirmed(2)])
    transaction = org.trigger("code")

    eventually(lambda: step(org, transaction, 0).reported_status is not None,
               "failed over after the window, then delivered")  # fmt: skip
    row = step(org, transaction, 0)
    assert row.integration_id == org.ids["second"]
    assert attempts(row.id) == [
        ("first", "sent", None), ("first", "unconfirmed", "delivery_timeout"),
        ("second", "sent", None),
    ]  # fmt: skip
    first_send = watches(row.id)[0]
    assert first_send.state.value == "failed_over"
    assert first_send.reason == "not reported delivered within 2 s"

    # The first provider's report comes late: recorded against the delivery, nothing resent.
    assert first_send.provider_message_id is not None
    org.post_event("first", first_send.provider_message_id, "delivered")

    def late_event_recorded() -> bool:
        with database().session() as session:
            return bool(session.scalar(
                select(DeliveryEventRecord.id).where(
                    DeliveryEventRecord.delivery_id == row.id,
                    DeliveryEventRecord.integration_id == org.ids["first"],
                )
            ))  # fmt: skip

    eventually(late_event_recorded, "the late report recorded")
    sweeps_after(utcnow())
    assert (org.requests("first"), org.requests("second")) == (1, 1)
    assert [state.value for state in (w.state for w in watches(row.id))] == [
        "failed_over", "delivered",
    ]  # fmt: skip


def test_with_no_other_integration_the_delivery_fails_with_the_providers_reason(
    org: Org,
) -> None:
    org.integration("only", "sms", callback="undelivered")
    workflow(org.organisation_id, "code", [confirmed(60)])
    transaction = org.trigger("code")
    eventually(lambda: step(org, transaction, 0).status is DeliveryStatus.FAILED, "failed")
    row = step(org, transaction, 0)
    assert row.last_error == (
        "fake_http: reported undelivered; no other sms integration to send it through"
    )
    assert attempts(row.id) == [("only", "sent", None), ("only", "unconfirmed", "undelivered")]
    assert [w.state.value for w in watches(row.id)] == ["exhausted"]
    with database().session() as session:
        notification = session.get(Notification, row.notification_id)
        assert notification is not None
        assert notification.status.value == "failed"


def email_then_sms(org: Org, email_callback: str) -> str:
    org.integration("mail", "email", callback=email_callback)
    org.integration("sms", "sms", callback=None)
    wait = {"step": 0, "status": "opened", "within": 3}
    workflow(org.organisation_id, "nudge", [EMAIL, {**SMS, "config": {"wait_for": wait}}])
    return org.trigger("nudge")


def test_an_email_opened_in_time_means_no_sms(org: Org) -> None:
    transaction = email_then_sms(org, email_callback="opened")
    eventually(lambda: step(org, transaction, 1).status is DeliveryStatus.SKIPPED, "sms skipped")
    sms = step(org, transaction, 1)
    assert sms.last_error == "wait_for: step 0 opened within 3 s: it was opened"
    assert org.requests("sms") == 0
    assert step(org, transaction, 0).reported_status is not None


def test_an_email_not_opened_in_time_is_followed_by_the_sms(org: Org) -> None:
    transaction = email_then_sms(org, email_callback="delivered")
    eventually(lambda: step(org, transaction, 1).status is DeliveryStatus.SENT, "sms sent")
    email, sms = step(org, transaction, 0), step(org, transaction, 1)
    assert email.sent_at is not None
    assert sms.sent_at is not None
    assert (sms.sent_at - email.sent_at).total_seconds() >= 3
    assert email.reported_status is not None
    assert email.reported_status.value == "delivered"
    assert org.requests("sms") == 1


def in_app_then_sms(org: Org) -> str:
    org.integration("sms", "sms", callback=None)
    wait = {"step": 0, "status": "read", "within": 3}
    workflow(org.organisation_id, "inbox", [IN_APP, {**SMS, "config": {"wait_for": wait}}])
    return org.trigger("inbox")


def test_an_in_app_message_read_in_time_means_no_sms(org: Org) -> None:
    transaction = in_app_then_sms(org)
    eventually(lambda: step(org, transaction, 0).status is DeliveryStatus.SENT, "in the inbox")
    with database().session() as session:
        message_id = session.scalar(
            select(InboxMessage.id).where(InboxMessage.delivery_id == step(org, transaction, 0).id)
        )
    marked = run_action(
        "mark_inbox", {"subscriber_id": "ada", "message_ids": [str(message_id)], "as": "read"},
        organisation_id=org.organisation_id,
    )  # fmt: skip
    assert isinstance(marked, Ok), marked
    eventually(lambda: step(org, transaction, 1).status is DeliveryStatus.SKIPPED, "sms skipped")
    assert step(org, transaction, 1).last_error == "wait_for: step 0 read within 3 s: it was read"
    assert org.requests("sms") == 0


def test_an_in_app_message_left_unread_is_followed_by_the_sms(org: Org) -> None:
    transaction = in_app_then_sms(org)
    eventually(lambda: step(org, transaction, 1).status is DeliveryStatus.SENT, "sms sent")
    assert org.requests("sms") == 1

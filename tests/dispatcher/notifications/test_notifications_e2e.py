"""Notifications end to end: trigger -> PostgreSQL -> Redis -> real worker (and beat) -> fake provider."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from cryptography.fernet import Fernet

from dispatcher import TriggerError, create_organisation, trigger, trigger_bulk
from dispatcher.celery_app import app
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.notifications.status import transaction_status
from dispatcher.runtime.resources import database
from models import (
    Delivery,
    DeliveryStatus,
    InboxMessage,
    Integration,
    IntegrationStatus,
    Notification,
    NotificationStatus,
)
from tests.dispatcher.notify_support import (
    EMAIL_STEP,
    act,
    attempt_times,
    attempts,
    subscriber,
    wait_until_terminal,
    wire,
    workflow,
)
from tests.dispatcher.support import count, fetch

pytestmark = pytest.mark.usefixtures("worker")


def send_one(org: uuid.UUID, key: str = "code", **fields: Any) -> list[Any]:
    subscriber(org, "ada", first_name="Ada")
    workflow(org, key, [EMAIL_STEP])
    receipt = trigger(org, key, "ada", {"code": "1234"}, **fields)
    return wait_until_terminal(org, receipt.transaction_id)


def test_sent_through_the_primary_with_message_id_and_rendered_content(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id)
    subscriber(organisation_id, "ada", first_name="Ada")
    subscriber(organisation_id, "bo", first_name="Bo")
    workflow(organisation_id, "code", [EMAIL_STEP])
    receipt = trigger(organisation_id, "code", ["ada", "bo"], {"code": "1234"})
    assert len(receipt.notification_ids) == 2
    views = wait_until_terminal(organisation_id, receipt.transaction_id)
    assert [(v.subscriber, v.status, v.integration, v.provider) for v in views] == [
        ("ada", "sent", "primary", "fake_http"),
        ("bo", "sent", "primary", "fake_http"),
    ]
    assert all(
        view.provider_message_id and view.provider_message_id.startswith("msg-") for view in views
    )
    delivery = fetch(Delivery, uuid.UUID(views[0].delivery_id))
    assert delivery.content == {"subject": "Hi Ada", "body": "Code 1234"}
    assert attempts(views[0].delivery_id) == [("primary", "sent", 200)]
    for notification_id in receipt.notification_ids:
        assert (
            fetch(Notification, uuid.UUID(notification_id)).status is NotificationStatus.COMPLETED
        )


def test_transient_500s_are_retried_on_the_same_integration(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, behaviours={"primary": {"script": ["500", "500"]}})
    [view] = send_one(organisation_id)
    assert view.status == "sent"
    assert attempts(view.delivery_id) == [
        ("primary", "retryable", 500),
        ("primary", "retryable", 500),
        ("primary", "sent", 200),
    ]


def test_429_holds_the_integration_and_falls_back_at_once(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(
        fake_provider,
        organisation_id,
        behaviours={"primary": {"script": ["429"], "retry_after": 30}},
    )
    [view] = send_one(organisation_id)
    assert (view.status, view.integration) == ("sent", "secondary")
    assert attempts(view.delivery_id) == [
        ("primary", "retryable", 429),
        ("secondary", "sent", 200),
    ]


def test_429_with_nothing_to_fall_back_to_waits_for_its_retry_after(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(
        fake_provider,
        organisation_id,
        names=("primary",),
        behaviours={"primary": {"script": ["429"], "retry_after": 2}},
    )
    [view] = send_one(organisation_id)
    assert attempts(view.delivery_id) == [("primary", "retryable", 429), ("primary", "sent", 200)]
    first, second = attempt_times(view.delivery_id)
    assert second - first >= 2.0


def test_401_falls_back_at_once_to_the_secondary(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, behaviours={"primary": {"default": "401"}})
    [view] = send_one(organisation_id)
    assert (view.status, view.integration) == ("sent", "secondary")
    assert attempts(view.delivery_id) == [
        ("primary", "integration_error", 401),
        ("secondary", "sent", 200),
    ]


def test_invalid_recipient_fails_without_trying_other_integrations(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, behaviours={"primary": {"default": "invalid"}})
    [view] = send_one(organisation_id)
    assert view.status == "failed"
    assert "invalid recipient" in (view.last_error or "")
    assert attempts(view.delivery_id) == [("primary", "recipient_error", 400)]


def test_timeouts_are_retried_then_fall_back(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, behaviours={"primary": {"default": "timeout"}})
    [view] = send_one(organisation_id)
    assert (view.status, view.integration) == ("sent", "secondary")
    outcomes = attempts(view.delivery_id)
    # No answer after the request was read: ambiguous, and resent by default (at least once).
    assert outcomes == [("primary", "ambiguous", None)] * 3 + [("secondary", "sent", 200)]


def test_a_primary_that_keeps_failing_falls_back_after_its_attempts(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, behaviours={"primary": {"default": "500"}})
    [view] = send_one(organisation_id)
    assert (view.status, view.integration) == ("sent", "secondary")
    assert attempts(view.delivery_id) == [("primary", "retryable", 500)] * 3 + [
        ("secondary", "sent", 200)
    ]


def test_every_integration_failing_fails_with_every_attempt_recorded(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(
        fake_provider,
        organisation_id,
        behaviours={"primary": {"default": "401"}, "secondary": {"default": "500"}},
    )
    [view] = send_one(organisation_id)
    assert view.status == "failed"
    assert (
        attempts(view.delivery_id)
        == [("primary", "integration_error", 401)] + [("secondary", "retryable", 500)] * 3
    )
    assert view.attempts == 4
    assert "SECRET" not in (view.last_error or "")


def _seal_with_a_foreign_key(integration_id: uuid.UUID) -> None:
    """Credentials as a worker would find them after its key was removed before rotation."""
    token = Fernet(Fernet.generate_key()).encrypt(b'{"api_key": "SECRET-foreign"}').decode()
    with database().transaction() as session:
        # Raw SQL: the column type would encrypt the token again with this process's key.
        session.execute(
            sa.text("UPDATE integrations SET credentials = :token WHERE id = :id"),
            {"token": token, "id": integration_id},
        )


def test_credentials_that_cannot_be_decrypted_pass_the_integration_over_and_nothing_else(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    with_fallback = wire(fake_provider, organisation_id)
    _seal_with_a_foreign_key(with_fallback.integrations["primary"])
    alone = create_organisation(f"Alone {uuid.uuid4().hex[:6]}")
    only = wire(fake_provider, alone, names=("only",))
    _seal_with_a_foreign_key(only.integrations["only"])
    subscriber(alone, "bob")
    workflow(alone, "code", [EMAIL_STEP])
    # One batch may carry both organisations' deliveries: neither fails the other's.
    waiting = trigger(alone, "code", "bob", {"code": "1"})
    [view] = send_one(organisation_id)
    assert (view.status, view.integration) == ("sent", "secondary")
    assert attempts(view.delivery_id) == [("secondary", "sent", 200)]
    assert fake_provider.state.stats()["by_path"].get(with_fallback.paths["primary"], 0) == 0
    time.sleep(3)  # a few retry rounds
    [stuck] = transaction_status(alone, waiting.transaction_id)
    assert stuck.status == "retrying"
    assert "cannot be decrypted" in (stuck.last_error or "")
    assert attempts(stuck.delivery_id) == []
    # Not lost: once the credentials are readable again, it goes out.
    act(alone, "update_integration", {"integration_id": str(only.integrations["only"]),
                                      "credentials": {"api_key": "SECRET-only-key"}})  # fmt: skip
    [sent] = wait_until_terminal(alone, waiting.transaction_id)
    assert (sent.status, sent.integration) == ("sent", "only")


def test_no_integration_fails_with_a_clear_reason(organisation_id: uuid.UUID) -> None:
    [view] = send_one(organisation_id)
    assert view.status == "failed"
    assert view.last_error == "no active email integration in this organisation"


def test_the_same_transaction_twice_creates_nothing_new(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id)
    subscriber(organisation_id, "ada")
    workflow(organisation_id, "code", [EMAIL_STEP])
    first = trigger(organisation_id, "code", "ada", {"code": "1"}, transaction_id="order-42")
    second = trigger(organisation_id, "code", "ada", {"code": "1"}, transaction_id="order-42")
    assert not first.duplicate
    assert second.duplicate
    assert second.notification_ids == first.notification_ids
    wait_until_terminal(organisation_id, "order-42")
    assert count(Notification, organisation_id=organisation_id) == 1
    time.sleep(0.5)
    stats = [r for r in fake_provider.state.requests if r.path.startswith(organisation_id.hex[:12])]
    assert len(stats) == 1


def test_producer_errors_name_the_field(organisation_id: uuid.UUID) -> None:
    subscriber(organisation_id, "ada")
    workflow(organisation_id, "code", [EMAIL_STEP])
    cases = [
        (("nope", "ada", {"code": "1"}), "workflow"),
        (("code", "zed", {"code": "1"}), "to.0"),
        (("code", "ada", {}), "payload.code"),
        (("code", "ada", {"code": "x" * 70_000}), "payload"),
        (("code", [], {"code": "1"}), "to"),
        (("code", {"topic": "missing"}, {"code": "1"}), "to.0.topic"),
    ]
    for arguments, field in cases:
        with pytest.raises(TriggerError) as caught:
            trigger(organisation_id, *arguments)
        assert field in [error["field"] for error in caught.value.errors], (
            arguments[:2],
            caught.value.errors,
        )
    assert count(Notification, organisation_id=organisation_id) == 0


def test_inline_subscribers_and_topics(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id)
    workflow(organisation_id, "news", [EMAIL_STEP])
    inline = trigger(
        organisation_id,
        "news",
        {"subscriber_id": "new-1", "email": "n1@example.com"},
        {"code": "1"},
    )
    wait_until_terminal(organisation_id, inline.transaction_id)
    members = [subscriber(organisation_id, f"m{i}") for i in range(3)]
    act(
        organisation_id,
        "create_topic",
        {"key": "all", "name": "All", "subscriber_ids": [str(m) for m in members]},
    )
    fanout = trigger(organisation_id, "news", {"topic": "all"}, {"code": "2"})
    views = wait_until_terminal(organisation_id, fanout.transaction_id)
    assert sorted(v.subscriber for v in views) == ["m0", "m1", "m2"]
    assert {v.status for v in views} == {"sent"}


def test_conditions_and_preferences_skip_steps_and_critical_ignores_opt_outs(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id)
    wire(fake_provider, organisation_id, names=("sms",), channel="sms")
    ada = subscriber(organisation_id, "ada", phone="+447700900001")
    steps = [EMAIL_STEP, {"kind": "sms", "template": {"body": "VIP {{ payload.code }}"},
                          "conditions": [{"field": "payload.vip", "op": "eq", "value": True}]}]  # fmt: skip
    workflow(organisation_id, "promo", steps)
    workflow(organisation_id, "reset", [EMAIL_STEP], critical=True)
    act(
        organisation_id,
        "set_preference",
        {"subscriber_id": str(ada), "channel_type": "email", "enabled": False},
    )
    promo = wait_until_terminal(
        organisation_id,
        trigger(organisation_id, "promo", "ada", {"code": "1", "vip": False}).transaction_id,
    )
    assert [(v.channel, v.status, v.last_error) for v in promo] == [
        ("email", "skipped", "subscriber opted out"),
        ("sms", "skipped", "step conditions not met"),
    ]
    vip = wait_until_terminal(
        organisation_id,
        trigger(organisation_id, "promo", "ada", {"code": "2", "vip": True}).transaction_id,
    )
    assert [(v.channel, v.status) for v in vip] == [("email", "skipped"), ("sms", "sent")]
    reset = wait_until_terminal(
        organisation_id, trigger(organisation_id, "reset", "ada", {"code": "3"}).transaction_id
    )
    assert [(v.channel, v.status) for v in reset] == [("email", "sent")]


def test_a_delay_step_waits_in_the_database_not_in_a_worker(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id)
    subscriber(organisation_id, "ada")
    workflow(organisation_id, "later", [{"kind": "delay", "config": {"seconds": 2}}, EMAIL_STEP])
    started = time.time()
    receipt = trigger(organisation_id, "later", "ada", {"code": "1"})
    [delivery] = _deliveries(organisation_id)
    assert delivery.status is DeliveryStatus.QUEUED
    assert (
        delivery.next_attempt_at is not None
        and delivery.next_attempt_at.timestamp() >= started + 1.9
    )
    [view] = wait_until_terminal(organisation_id, receipt.transaction_id)
    assert view.status == "sent"
    assert attempt_times(view.delivery_id)[0] >= started + 1.9


def test_a_digest_step_sends_one_message_listing_the_events(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id)
    subscriber(organisation_id, "ada")
    steps = [{"kind": "digest", "config": {"window_seconds": 2}},
             {"kind": "email", "template": {"subject": "{{ digest.count }} comments",
                                            "body": "{% for e in digest.events %}{{ e.text }};{% endfor %}"}}]  # fmt: skip
    workflow(organisation_id, "comments", steps)
    receipts = [trigger(organisation_id, "comments", "ada", {"text": f"c{i}"}) for i in range(3)]
    views = [wait_until_terminal(organisation_id, r.transaction_id)[0] for r in receipts]
    assert [v.status for v in views] == ["sent", "skipped", "skipped"]
    assert views[1].last_error == "collected into an open digest"
    collected = fetch(Notification, uuid.UUID(receipts[1].notification_ids[0]))
    assert collected.status is NotificationStatus.COMPLETED
    assert fetch(Delivery, uuid.UUID(views[0].delivery_id)).content == {
        "subject": "3 comments",
        "body": "c0;c1;c2;",
    }


def test_in_app_messages_land_in_the_inbox(organisation_id: uuid.UUID) -> None:
    ada = subscriber(organisation_id, "ada")
    workflow(
        organisation_id,
        "hello",
        [{"kind": "in_app", "template": {"title": "Hello", "body": "Welcome {{ payload.name }}"}}],
    )
    [view] = wait_until_terminal(
        organisation_id, trigger(organisation_id, "hello", "ada", {"name": "Ada"}).transaction_id
    )
    assert (view.status, view.provider) == ("sent", "inbox")
    assert count(InboxMessage, subscriber_id=ada) == 1


def test_the_circuit_opens_after_repeated_failures_and_a_probe_closes_it(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wiring = wire(fake_provider, organisation_id, behaviours={"primary": {"default": "500"}})
    subscribers = [f"s{i}" for i in range(6)]
    for name in subscribers:
        subscriber(organisation_id, name)
    workflow(organisation_id, "code", [EMAIL_STEP])
    first = trigger(organisation_id, "code", subscribers[:2], {"code": "1"})
    wait_until_terminal(organisation_id, first.transaction_id)
    assert fetch(Integration, wiring.integrations["primary"]).status is IntegrationStatus.ERROR
    calls_before = _calls(fake_provider, wiring.paths["primary"])
    while_open = trigger(organisation_id, "code", subscribers[2:4], {"code": "2"})
    views = wait_until_terminal(organisation_id, while_open.transaction_id)
    assert {(v.status, v.integration) for v in views} == {("sent", "secondary")}
    assert _calls(fake_provider, wiring.paths["primary"]) == calls_before  # skipped while open
    fake_provider.configure(wiring.paths["primary"], default="ok")
    time.sleep(2.2)  # the cool-down
    after = trigger(organisation_id, "code", subscribers[4:], {"code": "3"})
    views = wait_until_terminal(organisation_id, after.transaction_id)
    assert {(v.status, v.integration) for v in views} == {("sent", "primary")}
    assert fetch(Integration, wiring.integrations["primary"]).status is IntegrationStatus.ACTIVE


def test_the_sweeper_recovers_deliveries_after_the_queue_is_flushed(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer, redis_url: str, worker: str
) -> None:
    wire(fake_provider, organisation_id)
    for i in range(20):
        subscriber(organisation_id, f"u{i}")
    workflow(organisation_id, "code", [EMAIL_STEP])
    queue = app.conf.task_queues[1].name  # deliveries
    hostname = worker  # this test's own worker, not whichever answers a ping first
    assert app.control.cancel_consumer(queue, reply=True, destination=[hostname])
    # Kombu's Redis transport may have a BRPOP on the queue outstanding when the cancel arrives
    # (it blocks up to a second); one issued before the cancel would still take a message.
    time.sleep(2)
    try:
        receipt = trigger_bulk(
            organisation_id,
            [{"workflow": "code", "to": [f"u{i}" for i in range(20)], "payload": {"code": "9"}}],
        )[0]
        client = redis.Redis.from_url(redis_url)
        assert client.llen(queue) >= 1
        client.delete(queue)  # the broker loses every message
        client.close()
    finally:
        assert app.control.add_consumer(queue, reply=True, destination=[hostname])
    views = wait_until_terminal(organisation_id, receipt.transaction_id, timeout=40)
    assert {v.status for v in views} == {"sent"}
    accepted = [
        r.delivery_id
        for r in fake_provider.state.requests
        if r.answer == "ok" and r.delivery_id in {v.delivery_id for v in views}
    ]
    assert sorted(accepted) == sorted(v.delivery_id for v in views)  # each exactly once


def _deliveries(organisation_id: uuid.UUID) -> list[Delivery]:
    from sqlalchemy import select

    from dispatcher.runtime.resources import database

    with database().session() as session:
        return list(
            session.scalars(select(Delivery).where(Delivery.organisation_id == organisation_id))
        )


def _calls(fake: FakeProviderServer, path: str) -> int:
    return sum(1 for r in fake.state.requests if r.path == path)


def test_private_and_metadata_destinations_are_refused_before_any_request(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, names=("public",))
    # The integration's own URL points into a private network: refused, and the next one is used.
    act(organisation_id, "create_integration", {
        "name": "internal", "provider": "fake_http", "channel_type": "email", "is_primary": True,
        "credentials": {"api_key": "SECRET-internal"}, "settings": {"url": "http://10.1.2.3/send"}})  # fmt: skip
    [view] = send_one(organisation_id)
    assert (view.status, view.integration) == ("sent", "public")
    assert attempts(view.delivery_id) == [
        ("internal", "integration_error", None),
        ("public", "sent", 200),
    ]
    # A subscriber's webhook URL aimed at the cloud metadata service fails the delivery.
    act(organisation_id, "create_integration", {
        "name": "hooks", "provider": "webhook", "channel_type": "webhook",
        "credentials": {"signing_secret": "SECRET-signing-123456"}})  # fmt: skip
    subscriber(
        organisation_id,
        "mallory",
        channels={"webhook": {"url": "http://169.254.169.254/latest/meta-data"}},
    )
    workflow(
        organisation_id, "hook", [{"kind": "webhook", "template": {"body": "{{ payload.code }}"}}]
    )
    [hook] = wait_until_terminal(
        organisation_id, trigger(organisation_id, "hook", "mallory", {"code": "1"}).transaction_id
    )
    assert hook.status == "failed"
    assert "webhook URL refused" in (hook.last_error or "")
    assert "metadata" in (hook.last_error or "") or "link-local" in (hook.last_error or "")

"""Fetch steps end to end: trigger -> PostgreSQL -> real worker -> fetch (fake server) -> send."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from dispatcher import trigger
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.runtime.resources import database
from models import AttemptOutcome, Delivery, DeliveryAttempt, Notification, NotificationStatus
from tests.dispatcher.notify_support import act, subscriber, wait_until_terminal, wire, workflow

pytestmark = pytest.mark.usefixtures("worker")

EMAIL_AFTER_FETCH = {
    "kind": "email",
    "template": {"subject": "Your plan", "body": "Plan {{ payload.account.plan }} for {{ code }}"},
}


def fetch_step(url: str, **config: Any) -> dict[str, Any]:
    return {"kind": "fetch", "config": {"url": url, **config}}


def path_for(org: uuid.UUID, name: str) -> str:
    return f"{org.hex[:12]}-fetch-{name}"


def content_of(delivery_id: str) -> dict[str, Any]:
    with database().session() as session:
        delivery = session.get(Delivery, uuid.UUID(delivery_id))
        assert delivery is not None
        return dict(delivery.content)


def fetch_attempts(delivery_id: str) -> list[tuple[str, AttemptOutcome, int | None]]:
    with database().session() as session:
        rows = session.execute(
            select(DeliveryAttempt.provider, DeliveryAttempt.outcome, DeliveryAttempt.http_status)
            .where(DeliveryAttempt.delivery_id == uuid.UUID(delivery_id))
            .order_by(DeliveryAttempt.created_at)
        ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def notification_of(org: uuid.UUID, transaction_id: str) -> Notification:
    with database().session() as session:
        found = session.scalars(
            select(Notification).where(
                Notification.organisation_id == org, Notification.transaction_id == transaction_id
            )
        ).one()
        session.expunge(found)
        return found


def test_the_answer_reaches_the_next_steps_template(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, ("primary",))
    path = path_for(organisation_id, "ok")
    fake_provider.configure(path, answer_json={"plan": "gold", "seats": 3})
    subscriber(organisation_id, "ada")
    url = fake_provider.url + "/" + path + "?user={{ subscriber.subscriber_id }}"
    workflow(
        organisation_id, "fetched",
        [fetch_step(url, merge_key="account"),
         {**EMAIL_AFTER_FETCH, "template": {"body": "Plan {{ payload.account.plan }} for "
                                                     "{{ payload.code }}"}}],
    )  # fmt: skip
    receipt = trigger(organisation_id, "fetched", "ada", {"code": "7"})
    views = wait_until_terminal(organisation_id, receipt.transaction_id)
    assert [(v.channel, v.status, v.last_error) for v in views] == [
        ("fetch", "sent", None),
        ("email", "sent", None),
    ]
    assert content_of(views[1].delivery_id)["body"] == "Plan gold for 7"
    # The attempt log keeps the fetch like a send; the delivery keeps no query string.
    assert fetch_attempts(views[0].delivery_id) == [("fetch", AttemptOutcome.SENT, 200)]
    assert content_of(views[0].delivery_id) == {
        "method": "GET",
        "url": fake_provider.url + "/" + path,
    }
    notification = notification_of(organisation_id, receipt.transaction_id)
    assert notification.payload == {"code": "7", "account": {"plan": "gold", "seats": 3}}
    assert notification.status is NotificationStatus.COMPLETED


def test_an_object_answer_merges_at_the_top_level_for_a_post(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, ("primary",))
    path = path_for(organisation_id, "post")
    fake_provider.configure(path, answer_json={"greeting": "Hello", "code": "overridden"})
    subscriber(organisation_id, "ada")
    workflow(
        organisation_id, "posted",
        [fetch_step(f"{fake_provider.url}/{path}", method="POST",
                    body={"who": "{{ subscriber.subscriber_id }}"}),
         {"kind": "email", "template": {"body": "{{ payload.greeting }} {{ payload.code }}"}}],
    )  # fmt: skip
    receipt = trigger(organisation_id, "posted", "ada", {"code": "1"})
    views = wait_until_terminal(organisation_id, receipt.transaction_id)
    assert [v.status for v in views] == ["sent", "sent"]
    assert content_of(views[1].delivery_id)["body"] == "Hello overridden"


def test_a_5xx_is_retried_and_the_steps_after_it_are_sent(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, ("primary",))
    path = path_for(organisation_id, "flaky")
    fake_provider.configure(path, script=["500", "500"], answer_json={"plan": "basic"})
    subscriber(organisation_id, "ada")
    workflow(
        organisation_id, "flaky",
        [fetch_step(f"{fake_provider.url}/{path}", merge_key="account"),
         {"kind": "email", "template": {"body": "Plan {{ payload.account.plan }}"}}],
    )  # fmt: skip
    receipt = trigger(organisation_id, "flaky", "ada", {})
    views = wait_until_terminal(organisation_id, receipt.transaction_id)
    assert [(v.status, v.attempts) for v in views] == [("sent", 3), ("sent", 1)]
    assert [outcome for _, outcome, _ in fetch_attempts(views[0].delivery_id)] == [
        AttemptOutcome.RETRYABLE, AttemptOutcome.RETRYABLE, AttemptOutcome.SENT,
    ]  # fmt: skip
    assert content_of(views[1].delivery_id)["body"] == "Plan basic"


def test_a_fetch_that_keeps_failing_fails_the_notification_with_its_reason(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, ("primary",))
    path = path_for(organisation_id, "down")
    fake_provider.configure(path, default="500")
    subscriber(organisation_id, "ada")
    workflow(
        organisation_id, "down",
        [fetch_step(f"{fake_provider.url}/{path}?token=SECRET-in-query", merge_key="a"),
         {"kind": "delay", "config": {"seconds": 1}},
         {"kind": "email", "template": {"body": "x"}},
         {"kind": "sms", "template": {"body": "y"}}],
    )  # fmt: skip
    receipt = trigger(organisation_id, "down", "ada", {})
    views = wait_until_terminal(organisation_id, receipt.transaction_id)
    fetched, email, sms = views
    assert (fetched.status, fetched.attempts) == ("failed", 3)
    assert fetched.last_error == "fetch: gave up after 3 attempts: HTTP 500 from the fetch URL"
    for view in (email, sms):
        assert view.status == "failed"
        assert view.last_error == f"the fetch step (step 0) failed: {fetched.last_error}"
        assert view.attempts == 0
    notification = notification_of(organisation_id, receipt.transaction_id)
    assert notification.status is NotificationStatus.FAILED
    assert "SECRET" not in repr([v.last_error for v in views])


def test_a_4xx_is_not_retried(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, ("primary",))
    path = path_for(organisation_id, "missing")
    fake_provider.configure(path, default="401")
    subscriber(organisation_id, "ada")
    workflow(
        organisation_id,
        "refused",
        [fetch_step(f"{fake_provider.url}/{path}"), {"kind": "email", "template": {"body": "x"}}],
    )
    receipt = trigger(organisation_id, "refused", "ada", {})
    fetched, email = wait_until_terminal(organisation_id, receipt.transaction_id)
    assert (fetched.status, fetched.attempts) == ("failed", 1)
    assert fetched.last_error == "fetch: HTTP 401 from the fetch URL"
    assert email.status == "failed"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"answer_text": "<html>not json</html>"}, "fetch: the answer is not JSON"),
        ({"answer_json": [1, 2]},
         "fetch: the answer is a JSON array, not an object; set merge_key to keep it"),
        ({"answer_json": {"big": "x" * 200}}, "fetch: answer larger than 100 bytes"),
    ],
)  # fmt: skip
def test_an_answer_that_cannot_be_merged_fails_with_a_clear_reason(
    organisation_id: uuid.UUID,
    fake_provider: FakeProviderServer,
    answer: dict[str, Any],
    reason: str,
) -> None:
    wire(fake_provider, organisation_id, ("primary",))
    path = path_for(organisation_id, "odd")
    fake_provider.configure(path, **answer)
    subscriber(organisation_id, "ada")
    workflow(
        organisation_id, "odd",
        [fetch_step(f"{fake_provider.url}/{path}", max_bytes=100),
         {"kind": "email", "template": {"body": "x"}}],
    )  # fmt: skip
    receipt = trigger(organisation_id, "odd", "ada", {})
    fetched, email = wait_until_terminal(organisation_id, receipt.transaction_id)
    assert (fetched.status, fetched.attempts, fetched.last_error) == ("failed", 1, reason)
    assert email.status == "failed"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data", "the cloud metadata address"),
        ("http://10.1.2.3:8080/users/{{ subscriber.subscriber_id }}", "a private address"),
    ],
)
def test_a_fetch_to_a_private_address_is_refused_by_the_guard(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer, url: str, why: str
) -> None:
    wire(fake_provider, organisation_id, ("primary",))
    subscriber(organisation_id, "ada")
    workflow(
        organisation_id, "ssrf",
        [fetch_step(url), {"kind": "email", "template": {"body": "x"}}],
    )  # fmt: skip
    receipt = trigger(organisation_id, "ssrf", "ada", {})
    fetched, email = wait_until_terminal(organisation_id, receipt.transaction_id)
    assert fetched.status == "failed"
    assert fetched.attempts == 1
    assert fetched.last_error is not None
    assert fetched.last_error.startswith("fetch: refused by the URL guard: host ")
    assert why in fetched.last_error
    assert email.status == "failed"
    assert email.last_error == f"the fetch step (step 0) failed: {fetched.last_error}"


def test_a_signed_fetch_is_signed_with_the_webhook_integrations_secret(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, ("primary",))
    act(organisation_id, "create_integration", {
        "name": "hooks", "provider": "webhook", "channel_type": "webhook",
        "credentials": {"signing_secret": "whsec-SECRET-org"},
        "settings": {"url": f"{fake_provider.url}/unused"},
    })  # fmt: skip
    path = path_for(organisation_id, "signed")
    fake_provider.configure(path, signing_secret="whsec-SECRET-org", answer_json={"ok": "yes"})
    subscriber(organisation_id, "ada")
    workflow(
        organisation_id, "signed",
        [fetch_step(f"{fake_provider.url}/{path}", method="POST", sign=True, merge_key="check"),
         {"kind": "email", "template": {"body": "Checked {{ payload.check.ok }}"}}],
    )  # fmt: skip
    receipt = trigger(organisation_id, "signed", "ada", {})
    fetched, email = wait_until_terminal(organisation_id, receipt.transaction_id)
    assert (fetched.status, email.status) == ("sent", "sent")
    assert content_of(email.delivery_id)["body"] == "Checked yes"
    recorded = [r for r in fake_provider.state.requests if r.path == path]
    assert [(r.delivery_id, r.answer) for r in recorded] == [(fetched.delivery_id, "ok")]


def test_a_signed_fetch_without_a_webhook_integration_fails_saying_so(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, ("primary",))
    subscriber(organisation_id, "ada")
    workflow(
        organisation_id, "unsigned",
        [fetch_step(f"{fake_provider.url}/{path_for(organisation_id, 'x')}", sign=True),
         {"kind": "email", "template": {"body": "x"}}],
    )  # fmt: skip
    receipt = trigger(organisation_id, "unsigned", "ada", {})
    fetched, email = wait_until_terminal(organisation_id, receipt.transaction_id)
    assert (fetched.status, fetched.attempts) == ("failed", 0)
    assert fetched.last_error is not None
    assert fetched.last_error.startswith("config.sign: the organisation has no active webhook")
    assert email.status == "failed"


def test_a_fetch_may_use_an_earlier_fetchs_answer_and_delays_count_from_its_end(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, ("primary",))
    first, second = path_for(organisation_id, "first"), path_for(organisation_id, "second")
    fake_provider.configure(first, answer_json={"next": second, "x": "one"})
    fake_provider.configure(second, answer_json={"y": "two"})
    subscriber(organisation_id, "ada")
    workflow(
        organisation_id, "chained",
        [fetch_step(f"{fake_provider.url}/{first}", merge_key="a"),
         fetch_step(fake_provider.url + "/{{ payload.a.next }}", merge_key="b"),
         {"kind": "delay", "config": {"seconds": 1}},
         {"kind": "email", "template": {"body": "{{ payload.a.x }} {{ payload.b.y }}"}}],
    )  # fmt: skip
    receipt = trigger(organisation_id, "chained", "ada", {})
    views = wait_until_terminal(organisation_id, receipt.transaction_id)
    assert [(v.channel, v.status) for v in views] == [
        ("fetch", "sent"), ("fetch", "sent"), ("email", "sent"),
    ]  # fmt: skip
    assert content_of(views[2].delivery_id)["body"] == "one two"
    with database().session() as session:
        sent = dict(
            session.execute(
                select(Delivery.step_position, Delivery.sent_at).where(
                    Delivery.id.in_([uuid.UUID(v.delivery_id) for v in views])
                )
            ).all()
        )
    # The delay after the second fetch started when that fetch's answer was written.
    assert (sent[3] - sent[1]).total_seconds() >= 1.0


def test_a_failed_first_fetch_fails_the_second_and_the_rest(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, ("primary",))
    path = path_for(organisation_id, "gone")
    fake_provider.configure(path, default="invalid")
    subscriber(organisation_id, "ada")
    workflow(
        organisation_id, "chain-fails",
        [fetch_step(f"{fake_provider.url}/{path}", merge_key="a"),
         fetch_step(f"{fake_provider.url}/{path}-2", merge_key="b"),
         {"kind": "email", "template": {"body": "x"}}],
    )  # fmt: skip
    receipt = trigger(organisation_id, "chain-fails", "ada", {})
    first, second, email = wait_until_terminal(organisation_id, receipt.transaction_id)
    assert (first.status, first.last_error) == ("failed", "fetch: HTTP 400 from the fetch URL")
    for view in (second, email):
        assert (view.status, view.attempts) == ("failed", 0)
        assert view.last_error == f"the fetch step (step 0) failed: {first.last_error}"


def test_a_trigger_to_many_subscribers_fetches_for_each(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    """Many fetches at once: each batch merges its answers and makes its emails due together."""
    wire(fake_provider, organisation_id, ("primary",))
    path = path_for(organisation_id, "many")
    fake_provider.configure(path, answer_json={"plan": "team"})
    people = [f"p{n}" for n in range(120)]
    for person in people:
        subscriber(organisation_id, person)
    workflow(
        organisation_id, "many",
        [fetch_step(fake_provider.url + "/" + path + "?u={{ subscriber.subscriber_id }}",
                    merge_key="account"),
         {"kind": "email", "template": {"body": "{{ subscriber.subscriber_id }}: "
                                                "{{ payload.account.plan }}"}}],
    )  # fmt: skip
    receipt = trigger(organisation_id, "many", people, {})
    views = wait_until_terminal(organisation_id, receipt.transaction_id, timeout=60)
    assert {(v.channel, v.status) for v in views} == {("fetch", "sent"), ("email", "sent")}
    assert len(views) == 2 * len(people)
    with database().session() as session:
        bodies = session.scalars(
            select(Delivery.content["body"].as_string()).where(
                Delivery.organisation_id == organisation_id, Delivery.step_position == 1
            )
        ).all()
    assert sorted(bodies) == sorted(f"{person}: team" for person in people)

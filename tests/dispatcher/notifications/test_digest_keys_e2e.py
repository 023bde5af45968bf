"""A keyed cron digest end to end: trigger -> PostgreSQL -> beat's sweeper -> real worker ->
fake provider. The digest is due at 09:00 in the subscriber's zone (Europe/Berlin) on the first
day after Berlin's next clock change, so its due time is read with the offset after the change,
not the one the events were triggered under. No test waits for that day: once the due time is
checked, it is moved to now, as the clock reaching it would, and the sweeper releases the digests."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from dispatcher import trigger
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.runtime.resources import database
from models import Delivery, DeliveryStatus, Notification
from models.types import utcnow
from tests.dispatcher.notify_support import subscriber, wait_until_terminal, wire, workflow

pytestmark = pytest.mark.usefixtures("worker")

BERLIN = ZoneInfo("Europe/Berlin")


def next_clock_change(after: datetime) -> date:
    """The first day after ``after`` on which Berlin's UTC offset changes."""
    day = after.astimezone(BERLIN).date()
    offset = datetime(day.year, day.month, day.day, 12, tzinfo=BERLIN).utcoffset()
    while True:
        day += timedelta(days=1)
        if datetime(day.year, day.month, day.day, 12, tzinfo=BERLIN).utcoffset() != offset:
            return day


def test_a_keyed_cron_digest_is_due_at_nine_berlin_time_after_the_clock_change_and_sends_per_key(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wiring = wire(fake_provider, organisation_id, names=("primary",))
    subscriber(organisation_id, "ada", timezone="Europe/Berlin")
    change = next_clock_change(utcnow())
    # Clocks go forward in March (UTC+1 -> UTC+2), back in October (UTC+2 -> UTC+1).
    expected = datetime(change.year, change.month, change.day, 7 if change.month == 3 else 8,
                        tzinfo=UTC)  # fmt: skip
    steps = [
        {"kind": "digest",
         "config": {"key": "{{ payload.project }}", "cron": f"0 9 {change.day} {change.month} *"}},
        {"kind": "email", "template": {
            "subject": "{{ digest.key }}: {{ digest.count }} comments",
            "body": "{% for e in digest.events %}{{ e.project }}/{{ e.text }};{% endfor %}"}},
    ]  # fmt: skip
    workflow(organisation_id, "comments", steps)
    events = [("alpha", "a1"), ("beta", "b1"), ("alpha", "a2"), ("beta", "b2"), ("alpha", "a3")]
    receipts = [
        trigger(organisation_id, "comments", "ada", {"project": p, "text": t}) for p, t in events
    ]
    leaders = [receipts[0], receipts[1]]
    with database().session() as session:
        held = session.execute(
            select(Notification.digest_key, Notification.digest_until, Delivery.id,
                   Delivery.status, Delivery.next_attempt_at)
            .join(Delivery, Delivery.notification_id == Notification.id)
            .where(Notification.id.in_([uuid.UUID(r.notification_ids[0]) for r in leaders]))
            .order_by(Notification.digest_key)
        ).all()  # fmt: skip
    # One digest per key, each due at 09:00 Berlin time on the day of the change, in UTC.
    assert [(row[0], row[1], row[3], row[4]) for row in held] == [
        ("alpha", expected, DeliveryStatus.QUEUED, expected),
        ("beta", expected, DeliveryStatus.QUEUED, expected),
    ]
    assert expected.astimezone(BERLIN).hour == 9
    assert expected.astimezone(BERLIN).utcoffset() != utcnow().astimezone(BERLIN).utcoffset()
    for receipt in receipts[2:]:
        [view] = wait_until_terminal(organisation_id, receipt.transaction_id)
        assert (view.status, view.last_error) == ("skipped", "collected into an open digest")

    # The due time comes: the sweeper (not this test) enqueues the digests.
    with database().transaction() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([row[2] for row in held]))
            .values(next_attempt_at=utcnow())
        )
    views = [wait_until_terminal(organisation_id, r.transaction_id)[0] for r in leaders]
    assert [view.status for view in views] == ["sent", "sent"]
    with database().session() as session:
        sent = dict(
            session.execute(
                select(Delivery.id, Delivery.content).where(
                    Delivery.id.in_([row[2] for row in held])
                )
            ).all()
        )
    assert sorted(content["subject"] for content in sent.values()) == [
        "alpha: 3 comments",
        "beta: 2 comments",
    ]
    assert sorted(content["body"] for content in sent.values()) == [
        "alpha/a1;alpha/a2;alpha/a3;",
        "beta/b1;beta/b2;",
    ]
    # One message per key reached the provider.
    requests = [r for r in fake_provider.state.requests if r.path == wiring.paths["primary"]]
    assert sorted(r.delivery_id for r in requests if r.answer == "ok") == sorted(
        str(row[2]) for row in held
    )

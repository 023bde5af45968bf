"""Digests by subscriber and key, released after a window or at a cron time: the rows a trigger
writes and what the sender makes of them. PostgreSQL and SQLite; batches sent in this process
(in-app steps, no provider), in a database no worker of the session sweeps."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from dispatcher.notifications.triggers import trigger_bulk
from dispatcher.runtime.resources import database
from dispatcher.sending.batch import process_batch
from models import Delivery, DeliveryStatus, Notification, Subscriber, Workflow
from models.types import utcnow
from tests.dispatcher.notify_support import workflow

pytestmark = pytest.mark.usefixtures("sweeper_free_database")

LISTING = {"kind": "in_app", "template": {
    "title": "{{ digest.key }}: {{ digest.count }}",
    "body": "{% for e in digest.events %}{{ e.text }};{% endfor %}",
}}  # fmt: skip


def digest(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"kind": "digest", "config": config}, LISTING]


@pytest.fixture(params=["postgresql", "sqlite"])
def org(request: pytest.FixtureRequest) -> uuid.UUID:
    fixture = "organisation_id" if request.param == "postgresql" else "sqlite_organisation"
    organisation: uuid.UUID = request.getfixturevalue(fixture)
    return organisation


def send(org: uuid.UUID, to: Any, *payloads: dict[str, Any], key: str = "w") -> None:
    trigger_bulk(org, [{"workflow": key, "to": to, "payload": p} for p in payloads])


def release(org: uuid.UUID) -> dict[tuple[str, str], tuple[str, str]]:
    """Make every held digest due and send it: (subscriber, title) -> (body, status)."""
    with database().transaction() as session:
        ids = list(
            session.scalars(
                update(Delivery)
                .where(Delivery.organisation_id == org, Delivery.status == DeliveryStatus.QUEUED)
                .values(next_attempt_at=utcnow())
                .returning(Delivery.id)
            )
        )
    process_batch([str(i) for i in ids])
    with database().session() as session:
        rows = session.execute(
            select(Subscriber.external_id, Delivery.content, Delivery.status)
            .join(Notification, Notification.id == Delivery.notification_id)
            .join(Subscriber, Subscriber.id == Notification.subscriber_id)
            .where(Delivery.id.in_(ids))
        ).all()
    return {
        (name, content["title"]): (content["body"], status.value) for name, content, status in rows
    }


def leaders(org: uuid.UUID) -> list[Notification]:
    with database().session() as session:
        return list(
            session.scalars(
                select(Notification)
                .where(Notification.organisation_id == org, Notification.digest_until.is_not(None))
                .order_by(Notification.created_at)
            )
        )


def test_events_with_different_keys_collect_into_different_digests(org: uuid.UUID) -> None:
    workflow(org, "w", digest({"window_seconds": 600, "key": "{{ payload.group.id }}"}))
    people = [{"subscriber_id": "ada"}, {"subscriber_id": "bo"}]
    send(org, people, {"group": {"id": "alpha"}, "text": "a1"})
    send(org, people, {"group": {"id": "beta"}, "text": "b1"})
    send(org, "ada", {"group": {"id": "alpha"}, "text": "a2"})
    # Renders empty, and does not render at all: no key, the event is kept.
    send(org, "ada", {"group": {"id": ""}, "text": "n1"}, {"text": "n2"})
    assert sorted((n.digest_key or "") for n in leaders(org)) == ["", "alpha", "alpha", "beta",
                                                                   "beta"]  # fmt: skip
    assert release(org) == {
        ("ada", "alpha: 2"): ("a1;a2;", "sent"),
        ("ada", "beta: 1"): ("b1;", "sent"),
        ("ada", ": 2"): ("n1;n2;", "sent"),
        ("bo", "alpha: 1"): ("a1;", "sent"),
        ("bo", "beta: 1"): ("b1;", "sent"),
    }
    with database().session() as session:
        meta = session.scalars(
            select(Notification.meta).where(
                Notification.organisation_id == org, Notification.payload == {"text": "n2"}
            )
        ).one()
    assert meta["digest_key_error"].startswith("UndefinedError")
    # Sent digests are closed: the same key later starts a new one.
    send(org, "ada", {"group": {"id": "alpha"}, "text": "a3"})
    assert release(org) == {("ada", "alpha: 1"): ("a3;", "sent")}


def test_a_key_may_read_the_subscriber_and_each_one_joins_their_own(org: uuid.UUID) -> None:
    workflow(org, "w", digest({"window_seconds": 600, "key": "{{ subscriber.data.team }}"}))
    people = [{"subscriber_id": f"s{i}", "data": {"team": f"t{i % 3}"}} for i in range(7)]
    send(org, people, {"text": "x"})
    send(org, [p["subscriber_id"] for p in people], {"text": "y"})
    sent = release(org)
    assert sent == {(f"s{i}", f"t{i % 3}: 2"): ("x;y;", "sent") for i in range(7)}


def test_a_step_without_a_key_keeps_one_digest_per_subscriber(org: uuid.UUID) -> None:
    workflow(org, "w", digest({"window_seconds": 600}))
    send(org, [{"subscriber_id": "ada"}], {"text": "1", "k": "a"})
    send(org, "ada", {"text": "2", "k": "b"})
    assert [n.digest_key for n in leaders(org)] == [None]
    assert release(org) == {("ada", ": 2"): ("1;2;", "sent")}


def next_nine(moment: datetime, zone: str) -> datetime:
    """09:00 wall-clock in ``zone`` next after ``moment``, by aware-datetime arithmetic (which
    is wall-clock arithmetic in one zone), independently of croniter."""
    local = moment.astimezone(ZoneInfo(zone))
    nine = local.replace(hour=9, minute=0, second=0, microsecond=0)
    return nine if nine > local else nine + timedelta(days=1)


def test_a_cron_digest_is_due_at_the_next_cron_time_in_the_subscribers_zone(
    org: uuid.UUID,
) -> None:
    workflow(org, "w", digest({"cron": "0 9 * * *", "key": "{{ payload.k }}"}))
    workflow(org, "fixed", digest({"cron": "0 9 * * *", "timezone": "Asia/Tokyo"}))
    people = [
        {"subscriber_id": "berlin", "timezone": "Europe/Berlin"},
        {"subscriber_id": "york", "timezone": "America/New_York"},
        {"subscriber_id": "nowhere"},
        {"subscriber_id": "bad", "timezone": "Not/AZone"},
    ]
    send(org, people, {"k": "a", "text": "1"})
    send(org, people, {"k": "a", "text": "2"}, key="fixed")
    zones = {"berlin": "Europe/Berlin", "york": "America/New_York", "nowhere": "UTC",
             "bad": "UTC"}  # fmt: skip
    with database().session() as session:
        rows = session.execute(
            select(Subscriber.external_id, Workflow.key, Notification.created_at,
                   Notification.digest_until, Delivery.next_attempt_at)
            .join(Notification, Notification.subscriber_id == Subscriber.id)
            .join(Workflow, Workflow.id == Notification.workflow_id)
            .join(Delivery, Delivery.notification_id == Notification.id)
            .where(Notification.organisation_id == org)
        ).all()  # fmt: skip
    assert len(rows) == 8
    for name, key, created, until, due in rows:
        # The step's own zone for every subscriber of "fixed"; each one's own (or UTC) else.
        zone = "Asia/Tokyo" if key == "fixed" else zones[name]
        assert until == due == next_nine(created, zone), (name, key)

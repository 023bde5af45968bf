"""A digest that closes while a trigger joins it: every event is either in a digest that is sent
or sent on its own, never neither. Real PostgreSQL, sending batches run in threads (in-app steps,
so no provider is involved); the trigger's transaction is held open across the close."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select, text, update

from dispatcher.config import get_settings
from dispatcher.notifications.events import TriggerEvent
from dispatcher.notifications.triggers import trigger_bulk, write_event
from dispatcher.runtime.resources import database
from dispatcher.sending.batch import process_batch
from models import Delivery, DeliveryStatus, Notification
from models.types import utcnow
from tests.dispatcher.notify_support import workflow

# A database no sweeper of the session's worker reserves from: these tests send the batches
# themselves, and a worker sending some of them meanwhile would still be at it when they count.
pytestmark = pytest.mark.usefixtures("sweeper_free_database")

WINDOWS = 300
SENDERS = 3
DIGEST = "comments"
STEPS = [
    {"kind": "digest", "config": {"window_seconds": 600}},
    {"kind": "in_app", "template": {
        "title": "{{ digest.count }} events",
        "body": "{% for e in digest.events %}{{ e.event }};{% endfor %}",
    }},
]  # fmt: skip


def open_windows(organisation_id: uuid.UUID, count: int) -> list[str]:
    """``count`` subscribers, each with an open digest holding event ``A``."""
    workflow(organisation_id, DIGEST, STEPS)
    names = [f"s{i}" for i in range(count)]
    to = [{"subscriber_id": name, "email": f"{name}@example.com"} for name in names]
    trigger_bulk(organisation_id, [{"workflow": DIGEST, "to": to, "payload": {"event": "A"}}])
    return names


def close_windows(organisation_id: uuid.UUID) -> list[uuid.UUID]:
    """The windows' ends arrive for the senders: every queued delivery becomes due."""
    with database().transaction() as session:
        return list(
            session.scalars(
                update(Delivery)
                .where(
                    Delivery.organisation_id == organisation_id,
                    Delivery.status == DeliveryStatus.QUEUED,
                )
                .values(next_attempt_at=utcnow())
                .returning(Delivery.id)
            )
        )


def send_in_threads(ids: list[uuid.UUID]) -> list[threading.Thread]:
    slices = [ids[start::SENDERS] for start in range(SENDERS)]
    threads = [
        threading.Thread(target=process_batch, args=([str(i) for i in part],), daemon=True)
        for part in slices
        if part
    ]
    for thread in threads:
        thread.start()
    return threads


def event_b(names: list[str]) -> TriggerEvent:
    return TriggerEvent.model_validate({"workflow": DIGEST, "to": names, "payload": {"event": "B"}})


@contextmanager
def trigger_held_open(organisation_id: uuid.UUID, names: list[str]) -> Iterator[None]:
    """Event ``B`` written in a thread whose transaction stays open until the block ends."""
    written, release, failures = threading.Event(), threading.Event(), []

    def run() -> None:
        try:
            with database().transaction() as session:
                write_event(session, organisation_id, event_b(names), get_settings())
                written.set()
                release.wait(timeout=120)
        except Exception as exc:  # the assertion below reports it
            failures.append(exc)
            written.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert written.wait(timeout=60) and not failures, failures
    try:
        yield
    finally:
        release.set()
        thread.join(timeout=120)
    assert not failures, failures


def until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout}s")
        time.sleep(0.05)


def waiting_on_row_locks() -> int:
    with database().session() as session:
        return int(
            session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            or 0
        )


def blocked_or_done(threads: list[threading.Thread]) -> Callable[[], bool]:
    """Every sender has either finished or is waiting for a row lock."""

    def check() -> bool:
        alive = sum(thread.is_alive() for thread in threads)
        return alive == 0 or waiting_on_row_locks() >= alive

    return check


def accounting(organisation_id: uuid.UUID) -> tuple[int, int, int]:
    """(events, lost, sent more than once): an event is sent when a sent delivery of its
    subscriber lists it (its own message, or the digest it was collected into)."""
    with database().session() as session:
        events = {
            (subscriber_id, payload["event"])
            for subscriber_id, payload in session.execute(
                select(Notification.subscriber_id, Notification.payload).where(
                    Notification.organisation_id == organisation_id
                )
            )
        }
        sent: Counter[tuple[uuid.UUID, str]] = Counter()
        for subscriber_id, content in session.execute(
            select(Notification.subscriber_id, Delivery.content)
            .join(Delivery, Delivery.notification_id == Notification.id)
            .where(
                Notification.organisation_id == organisation_id,
                Delivery.status == DeliveryStatus.SENT,
            )
        ):
            sent.update((subscriber_id, event) for event in content["body"].split(";") if event)
    lost = len(events - set(sent))
    duplicated = sum(1 for count in sent.values() if count > 1)
    print(f"events={len(events)} sent={len(set(sent))} lost={lost} duplicated={duplicated}")
    return len(events), lost, duplicated


def test_a_trigger_straddling_the_close_of_many_digests_loses_no_event(
    organisation_id: uuid.UUID,
) -> None:
    names = open_windows(organisation_id, WINDOWS)
    with trigger_held_open(organisation_id, names):
        senders = send_in_threads(close_windows(organisation_id))
        until(blocked_or_done(senders), "the senders finish or wait for the trigger")
    for thread in senders:
        thread.join(timeout=120)
        assert not thread.is_alive()
    # Whatever the trigger started on its own is sent once its window ends.
    senders = send_in_threads(close_windows(organisation_id))
    for thread in senders:
        thread.join(timeout=120)
    assert accounting(organisation_id) == (2 * WINDOWS, 0, 0)


@pytest.mark.parametrize("database_kind", ["postgresql", "sqlite"])
def test_a_trigger_after_a_digest_was_sent_starts_a_new_digest(
    database_kind: str, request: pytest.FixtureRequest
) -> None:
    # A sender may take a digest before its window ends (a broker hand-over holds a
    # reservation), so "still inside the window" is not enough to join it.
    fixture = "organisation_id" if database_kind == "postgresql" else "sqlite_organisation"
    organisation_id: uuid.UUID = request.getfixturevalue(fixture)
    names = open_windows(organisation_id, 20)
    process_batch([str(i) for i in close_windows(organisation_id)])
    with database().transaction() as session:
        write_event(session, organisation_id, event_b(names), get_settings())
    process_batch([str(i) for i in close_windows(organisation_id)])
    assert accounting(organisation_id) == (40, 0, 0)

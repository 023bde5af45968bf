"""The outbox on its own: which rows are due, what reserving them does, and the fair order in
which they are handed to the broker. Database only, no broker and no worker: a database of its own,
which no sweeper of the session's worker reserves from."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dispatcher.config import Settings, get_settings
from dispatcher.notifications.outbox import chunks, release, reserve_due
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import Delivery, DeliveryStatus, Notification, StepKind
from models.types import utcnow
from tests.dispatcher.notify_support import EMAIL_STEP, subscriber, workflow

pytestmark = pytest.mark.usefixtures("sweeper_free_database")

QUEUED, SENDING, RETRYING = DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.RETRYING
SENT, FAILED, SKIPPED = DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED


def deliveries(
    organisation_id: uuid.UUID, rows: list[tuple[DeliveryStatus, float | None, bool]]
) -> list[uuid.UUID]:
    """Delivery rows of one notification: (status, next_attempt_at in seconds from now, critical)."""
    workflow_id = workflow(organisation_id, f"w-{uuid.uuid4().hex[:8]}", [EMAIL_STEP])
    subscriber_id = subscriber(organisation_id, f"s-{uuid.uuid4().hex[:8]}")
    now = utcnow()
    ids = []
    with database().transaction() as session:
        notification = Notification(
            organisation_id=organisation_id,
            transaction_id=uuid.uuid4().hex,
            workflow_id=workflow_id,
            subscriber_id=subscriber_id,
            payload={},
        )
        session.add(notification)
        session.flush()
        for position, (status, offset, critical) in enumerate(rows):
            row = Delivery(
                organisation_id=organisation_id,
                notification_id=notification.id,
                step_position=position,
                step_kind=StepKind.EMAIL,
                status=status,
                critical=critical,
                next_attempt_at=None if offset is None else now + timedelta(seconds=offset),
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
    return ids


def next_attempts(ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[DeliveryStatus, datetime | None]]:
    with database().session() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.status, Delivery.next_attempt_at).where(
                Delivery.id.in_(ids)
            )
        )
        return {row.id: (row.status, row.next_attempt_at) for row in rows}


def mine(report_ordered: list[tuple[bool, list[uuid.UUID]]], ids: set[uuid.UUID]) -> list[Any]:
    """The reserved batches restricted to this test's rows (the database is shared)."""
    return [
        (critical, kept)
        for critical, batch in report_ordered
        if (kept := [i for i in batch if i in ids])
    ]


@pytest.mark.parametrize(
    ("status", "offset", "due"),
    [
        (QUEUED, -1.0, True),
        (QUEUED, 60.0, False),  # reserved for a broker message, or a delay step not yet due
        (QUEUED, None, False),
        (RETRYING, -1.0, True),
        (RETRYING, 60.0, False),
        (SENDING, -1.0, True),  # its send lease ran out: the worker died
        (SENDING, 60.0, False),  # being sent right now
        (SENT, -1.0, False),
        (FAILED, -1.0, False),
        (SKIPPED, -1.0, False),
    ],
)
def test_which_rows_are_due(status: DeliveryStatus, offset: float | None, due: bool) -> None:
    organisation_id = create_organisation(f"Outbox {uuid.uuid4().hex[:6]}")
    [delivery_id] = deliveries(organisation_id, [(status, offset, False)])
    before = next_attempts([delivery_id])[delivery_id]
    settings = get_settings()
    started = utcnow()
    report = reserve_due(settings)
    reserved = [i for _, batch in report.ordered for i in batch]
    assert (delivery_id in reserved) is due
    after_status, after_next = next_attempts([delivery_id])[delivery_id]
    if not due:
        assert (after_status, after_next) == before
        return
    # Reserved for one enqueue lease; a send whose worker died comes back as a retry.
    assert after_next is not None
    lease = timedelta(seconds=settings.enqueue_lease)
    assert started + lease <= after_next <= utcnow() + lease
    assert after_status is (RETRYING if status is SENDING else status)


def test_a_send_whose_worker_died_is_counted_as_recovered() -> None:
    organisation_id = create_organisation(f"Outbox {uuid.uuid4().hex[:6]}")
    ids = deliveries(organisation_id, [(SENDING, -1.0, False), (SENDING, -2.0, False)])
    report = reserve_due(get_settings())
    assert {i for _, batch in report.ordered for i in batch} >= set(ids)
    assert report.recovered_sends >= 2


def test_a_reserved_row_is_not_reserved_again_within_its_lease() -> None:
    organisation_id = create_organisation(f"Outbox {uuid.uuid4().hex[:6]}")
    ids = set(deliveries(organisation_id, [(QUEUED, -1.0, False)] * 3))
    first = reserve_due(get_settings())
    second = reserve_due(get_settings())
    assert mine(first.ordered, ids) and not mine(second.ordered, ids)


def test_critical_first_then_one_batch_of_each_organisation_in_turn() -> None:
    settings: Settings = get_settings().model_copy(update={"delivery_batch_size": 2})
    big, small = (create_organisation(f"Outbox {uuid.uuid4().hex[:6]}") for _ in range(2))
    big_ids = deliveries(big, [(QUEUED, -10.0 + i, False) for i in range(6)])
    small_ids = deliveries(small, [(QUEUED, -5.0, False), (QUEUED, -4.0, False)])
    critical_ids = deliveries(big, [(QUEUED, -1.0, True)])
    report = reserve_due(settings)
    ordered = mine(report.ordered, {*big_ids, *small_ids, *critical_ids})
    organisation_of = {**dict.fromkeys(big_ids, "big"), **dict.fromkeys(small_ids, "small")}
    organisation_of.update(dict.fromkeys(critical_ids, "critical"))
    shape = [(critical, organisation_of[batch[0]], len(batch)) for critical, batch in ordered]
    assert shape[0] == (True, "critical", 1)
    # The small organisation's only batch goes out second, not after all of the big one's.
    assert shape[1:3] in (
        [(False, "big", 2), (False, "small", 2)],
        [(False, "small", 2), (False, "big", 2)],
    )
    assert shape[3:] == [(False, "big", 2), (False, "big", 2)]
    # Oldest first within an organisation.
    assert [
        i for _, batch in ordered if organisation_of[batch[0]] == "big" for i in batch
    ] == big_ids


def test_per_organisation_limit_takes_the_oldest_rows() -> None:
    organisation_id = create_organisation(f"Outbox {uuid.uuid4().hex[:6]}")
    ids = deliveries(organisation_id, [(QUEUED, -10.0 + i, False) for i in range(5)])
    report = reserve_due(get_settings(), per_organisation=3)
    assert [i for _, batch in mine(report.ordered, set(ids)) for i in batch] == ids[:3]


def test_critical_only_leaves_normal_rows_due() -> None:
    organisation_id = create_organisation(f"Outbox {uuid.uuid4().hex[:6]}")
    normal, critical = deliveries(organisation_id, [(QUEUED, -1.0, False), (QUEUED, -1.0, True)])
    report = reserve_due(get_settings(), critical_only=True)
    assert mine(report.ordered, {normal, critical}) == [(True, [critical])]


def test_release_makes_reserved_queued_rows_due_now_and_leaves_others() -> None:
    organisation_id = create_organisation(f"Outbox {uuid.uuid4().hex[:6]}")
    queued, retrying = deliveries(
        organisation_id, [(QUEUED, 100.0, False), (RETRYING, 100.0, False)]
    )
    release([queued, retrying])
    rows = next_attempts([queued, retrying])
    assert rows[queued][1] is not None and rows[queued][1] <= utcnow()
    assert rows[retrying][1] is not None and rows[retrying][1] > utcnow() + timedelta(seconds=50)


@pytest.mark.parametrize(
    ("length", "size", "expected"), [(0, 3, []), (5, 2, [2, 2, 1]), (4, 4, [4])]
)
def test_chunks(length: int, size: int, expected: list[int]) -> None:
    ids = [uuid.uuid4() for _ in range(length)]
    parts = list(chunks(ids, size))
    assert [len(part) for part in parts] == expected
    assert [i for part in parts for i in part] == ids

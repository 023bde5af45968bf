"""Status-driven routing's decisions: what each reported event makes of a waiting send (table),
and, on PostgreSQL, that a failover is decided once however callbacks and sweeps race."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dispatcher.lifecycle.apply import apply_callbacks
from dispatcher.lifecycle.routing import fail_over_timed_out, judge
from dispatcher.runtime.resources import database
from models import (
    AttemptOutcome,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    DeliveryWatch,
    Integration,
    WatchState,
)
from models.types import utcnow
from providers.callbacks import BounceKind, DeliveryEvent, DeliveryEventKind
from tests.dispatcher.lifecycle.support import callback, event, integration, sent_delivery

WINDOW_END = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
IN_TIME = WINDOW_END - timedelta(seconds=1)
LATE = WINDOW_END + timedelta(seconds=1)


def reported(kind: str, at: datetime, **fields: object) -> DeliveryEvent:
    return DeliveryEvent.model_validate(
        {"kind": kind, "provider_message_id": "m", "occurred_at": at, "event_id": "e", **fields}
    )


@pytest.mark.parametrize(
    ("kind", "at", "fields", "expected"),
    [
        ("delivered", IN_TIME, {}, ("delivered", "")),
        ("opened", IN_TIME, {}, ("delivered", "")),
        ("clicked", IN_TIME, {}, ("delivered", "")),
        ("complained", IN_TIME, {}, ("delivered", "")),
        # Too late to count: the sweep fails it over (it already has, if it ran).
        ("delivered", LATE, {}, None),
        ("undelivered", IN_TIME, {"reason": "30008"}, ("failed_over", "undelivered")),
        ("undelivered", LATE, {}, ("failed_over", "undelivered")),
        ("bounced", IN_TIME, {"bounce": BounceKind.SOFT}, ("failed_over", "soft_bounce")),
        # The address is the problem: suppressed, another provider would not reach it.
        ("bounced", IN_TIME, {"bounce": BounceKind.HARD}, ("suppressed", "")),
        ("undelivered", IN_TIME, {"suppress": True}, ("suppressed", "")),
    ],
)
def test_what_a_reported_event_makes_of_a_waiting_send(
    kind: str, at: datetime, fields: dict[str, object], expected: tuple[str, str] | None
) -> None:
    verdict = judge(reported(kind, at, **fields), WINDOW_END)
    assert (None if verdict is None else (verdict.state.value, verdict.error_class)) == expected


def test_the_reason_carries_what_the_provider_said() -> None:
    verdict = judge(reported("undelivered", IN_TIME, reason="30008 unknown error"), WINDOW_END)
    assert verdict is not None
    assert verdict.reason == "reported undelivered: 30008 unknown error"
    assert DeliveryEventKind.UNDELIVERED.value in verdict.reason


# --- on PostgreSQL, with no sweeper of the session's beat racing the test -----------------------

pytestmark_db = pytest.mark.usefixtures("sweeper_free_database")


def waiting_send(
    organisation_id: uuid.UUID, *, window_ends: datetime, second_integration: bool = True
) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A delivery sent by a first integration (a second one as its fallback) whose send waits
    for a ``delivered`` report until ``window_ends``; its id, the first integration, the id."""
    first = integration(organisation_id)
    if second_integration:
        integration(organisation_id)
    message_id = f"m-{uuid.uuid4().hex[:8]}"
    delivery_id = sent_delivery(organisation_id, first, message_id)
    with database().transaction() as session:
        session.add(
            DeliveryWatch(
                organisation_id=organisation_id, delivery_id=delivery_id, integration_id=first,
                provider="fake_http", provider_message_id=message_id,
                sent_at=window_ends - timedelta(seconds=30), wait_until=window_ends,
            )
        )  # fmt: skip
    return delivery_id, first, message_id


def unconfirmed_attempts(delivery_id: uuid.UUID) -> int:
    with database().session() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    DeliveryAttempt.delivery_id == delivery_id,
                    DeliveryAttempt.outcome == AttemptOutcome.UNCONFIRMED,
                )
            )
            or 0
        )


def state_of(delivery_id: uuid.UUID) -> tuple[DeliveryStatus, list[WatchState]]:
    with database().session() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        states = list(
            session.scalars(select(DeliveryWatch.state).where(
                DeliveryWatch.delivery_id == delivery_id))
        )  # fmt: skip
        return row.status, states


@pytestmark_db
def test_a_replayed_undelivered_report_fails_over_once(organisation_id: uuid.UUID) -> None:
    delivery_id, first, message_id = waiting_send(
        organisation_id, window_ends=utcnow() + timedelta(hours=1)
    )
    for event_id in ("a", "b", "a"):  # a replay, and the provider's second report of it
        apply_callbacks([callback(organisation_id, first, event(
            message_id, "undelivered", 1e9, event_id=event_id))])  # fmt: skip
    assert unconfirmed_attempts(delivery_id) == 1
    assert state_of(delivery_id) == (DeliveryStatus.QUEUED, [WatchState.FAILED_OVER])


@pytestmark_db
def test_a_report_and_the_sweep_racing_fail_over_once(organisation_id: uuid.UUID) -> None:
    sends = [
        waiting_send(organisation_id, window_ends=utcnow() - timedelta(seconds=1)) for _ in range(5)
    ]
    barrier = threading.Barrier(3)

    def report() -> None:
        barrier.wait()
        apply_callbacks([callback(organisation_id, first, event(message_id, "undelivered", 1e9))
                         for _, first, message_id in sends])  # fmt: skip

    def sweep() -> None:
        barrier.wait()
        fail_over_timed_out()

    threads = [threading.Thread(target=report), threading.Thread(target=sweep),
               threading.Thread(target=sweep)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    fail_over_timed_out()  # whatever a sweep skipped as locked
    for delivery_id, _, _ in sends:
        assert unconfirmed_attempts(delivery_id) == 1
        assert state_of(delivery_id) == (DeliveryStatus.QUEUED, [WatchState.FAILED_OVER])


@pytestmark_db
def test_a_send_reported_delivered_in_time_is_left_alone_by_the_sweep(
    organisation_id: uuid.UUID,
) -> None:
    window_ends = utcnow() + timedelta(seconds=2)
    delivery_id, first, message_id = waiting_send(organisation_id, window_ends=window_ends)
    apply_callbacks([callback(organisation_id, first, event(
        message_id, "delivered", utcnow().timestamp()))])  # fmt: skip
    assert fail_over_timed_out(now=window_ends + timedelta(seconds=1)) == 0
    assert state_of(delivery_id) == (DeliveryStatus.SENT, [WatchState.DELIVERED])
    assert unconfirmed_attempts(delivery_id) == 0


@pytestmark_db
def test_the_sweep_fails_over_a_silent_send_and_ends_one_with_nowhere_to_go(
    organisation_id: uuid.UUID,
) -> None:
    past = utcnow() - timedelta(seconds=1)
    silent, _, _ = waiting_send(organisation_id, window_ends=past)
    assert fail_over_timed_out() == 1
    assert state_of(silent) == (DeliveryStatus.QUEUED, [WatchState.FAILED_OVER])

    alone, _, _ = waiting_send(organisation_id, window_ends=past, second_integration=False)
    # The organisation now has three integrations; the delivery burns the other two first.
    with database().transaction() as session:
        row = session.get(Delivery, alone)
        assert row is not None
        others = session.scalars(
            select(Integration.id).where(Integration.organisation_id == organisation_id)
        ).all()
        for other in {item for item in others if item != row.integration_id}:
            session.add(DeliveryAttempt(
                organisation_id=organisation_id, delivery_id=alone, integration_id=other,
                provider="fake_http", outcome=AttemptOutcome.INTEGRATION_ERROR,
            ))  # fmt: skip
    assert fail_over_timed_out() == 1
    status, states = state_of(alone)
    assert (status, states) == (DeliveryStatus.FAILED, [WatchState.EXHAUSTED])
    with database().session() as session:
        row = session.get(Delivery, alone)
        assert row is not None
        assert row.last_error == (
            "fake_http: not reported delivered within 30 s; no other email integration to send "
            "it through"
        )

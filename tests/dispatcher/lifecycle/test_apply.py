"""Applying provider events in bulk on PostgreSQL: precedence, de-duplication, unknown messages,
suppression."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import select

from dispatcher.lifecycle.apply import UNKNOWN_RETRY_DELAYS, apply_callbacks
from dispatcher.runtime.resources import database
from models import Delivery, DeliveryEventRecord, DeliveryStatus, ReportedStatus, Suppression
from tests.dispatcher.lifecycle.support import callback, event, integration, sent_delivery


def reported(delivery_id: uuid.UUID) -> tuple[DeliveryStatus, ReportedStatus | None]:
    with database().session() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        return row.status, row.reported_status


def events_of(delivery_id: uuid.UUID) -> list[str]:
    with database().session() as session:
        return [
            kind.value
            for kind in session.scalars(
                select(DeliveryEventRecord.kind)
                .where(DeliveryEventRecord.delivery_id == delivery_id)
                .order_by(DeliveryEventRecord.occurred_at)
            )
        ]


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        # (kind, time) in the order the callbacks arrive.
        ([("delivered", 1), ("opened", 2)], "opened"),
        ([("opened", 2), ("delivered", 1)], "opened"),
        ([("clicked", 3), ("opened", 2), ("delivered", 1)], "clicked"),
        ([("bounced", 1), ("delivered", 2)], "delivered"),
        ([("delivered", 2), ("bounced", 1)], "delivered"),
        ([("delivered", 1), ("bounced", 2)], "bounced"),
        ([("opened", 2), ("complained", 3)], "complained"),
        ([("complained", 3), ("clicked", 4)], "complained"),
    ],
)
def test_the_reported_status_follows_precedence_then_time(
    organisation_id: uuid.UUID, sequence: list[tuple[str, int]], final: str
) -> None:
    integration_id = integration(organisation_id)
    message_id = f"m-{uuid.uuid4().hex[:8]}"
    delivery_id = sent_delivery(organisation_id, integration_id, message_id)
    for kind, at in sequence:
        apply_callbacks(
            [callback(organisation_id, integration_id, event(message_id, kind, 1e9 + at))]
        )
    assert reported(delivery_id) == (DeliveryStatus.SENT, ReportedStatus(final))
    assert sorted(events_of(delivery_id)) == sorted(kind for kind, _ in sequence)


def test_one_batch_applies_many_events_and_a_replay_once(organisation_id: uuid.UUID) -> None:
    integration_id = integration(organisation_id)
    ids = [f"m-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    deliveries = [sent_delivery(organisation_id, integration_id, m) for m in ids]
    batch = [callback(organisation_id, integration_id,
                      *(event(m, "delivered", 1e9, event_id=f"e-{m}") for m in ids))]  # fmt: skip
    first = apply_callbacks(batch)
    again = apply_callbacks(batch + batch)
    assert (first.applied, first.duplicates) == (3, 0)
    assert (again.applied, again.duplicates) == (0, 6)
    assert all(events_of(d) == ["delivered"] for d in deliveries)
    assert {reported(d)[1] for d in deliveries} == {ReportedStatus.DELIVERED}


def test_an_unknown_message_is_tried_again_then_dropped_and_logged(
    organisation_id: uuid.UUID, caplog: pytest.LogCaptureFixture
) -> None:
    integration_id = integration(organisation_id)
    message = callback(organisation_id, integration_id, event("no-such", "delivered", 1e9))
    report = apply_callbacks([message])
    assert (report.applied, report.unknown) == (0, 1)
    [(delay, [retry])] = report.later
    assert (delay, retry["retry"]) == (UNKNOWN_RETRY_DELAYS[0], 1)
    last = {**message, "retry": len(UNKNOWN_RETRY_DELAYS)}
    with caplog.at_level(logging.INFO, logger="dispatcher.lifecycle.apply"):
        report = apply_callbacks([last])
    assert (report.unknown, report.later) == (1, [])
    assert "'no-such'" in caplog.text
    assert "dropped" in caplog.text


def test_another_organisation_cannot_reach_a_delivery(organisation_id: uuid.UUID) -> None:
    """The message names the integration's organisation; a delivery of another one with the
    same integration id and message id (impossible in practice) is not touched."""
    from dispatcher.organisations import create_organisation

    integration_id = integration(organisation_id)
    delivery_id = sent_delivery(organisation_id, integration_id, "m-own")
    other = create_organisation("Other")
    report = apply_callbacks([callback(other, integration_id, event("m-own", "opened", 1e9))])
    assert report.unknown == 1
    assert reported(delivery_id)[1] is None


def test_hard_bounces_and_complaints_suppress_the_normalized_address(
    organisation_id: uuid.UUID,
) -> None:
    integration_id = integration(organisation_id)
    bounced = sent_delivery(organisation_id, integration_id, "m-b", external_id="bo")
    sent_delivery(organisation_id, integration_id, "m-s", external_id="cy")
    sent_delivery(organisation_id, integration_id, "m-c", external_id="di")
    report = apply_callbacks(
        [
            callback(
                organisation_id,
                integration_id,
                event("m-b", "bounced", 1e9, bounce="hard", recipient="Bo@Example.com",
                      reason="550 5.1.1 no such user"),
                event("m-s", "bounced", 1e9, bounce="soft", recipient="cy@example.com"),
                # No recipient in the event: the subscriber's address for the channel.
                event("m-c", "complained", 1e9),
            )
        ]
    )  # fmt: skip
    assert report.suppressed == 2
    with database().session() as session:
        rows = session.scalars(
            select(Suppression)
            .where(Suppression.organisation_id == organisation_id)
            .order_by(Suppression.address)
        ).all()
    assert [(r.address, r.reason) for r in rows] == [
        ("bo@example.com", "bounced (hard): 550 5.1.1 no such user"),
        ("di@example.com", "complained"),
    ]
    assert rows[0].source_delivery_id == bounced
    again = apply_callbacks(
        [callback(organisation_id, integration_id,
                  event("m-b", "bounced", 2e9, bounce="hard", recipient="bo@example.com"))]
    )  # fmt: skip
    assert (again.applied, again.suppressed) == (1, 0)

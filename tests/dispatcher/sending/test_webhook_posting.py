"""Posting outbound webhook events in this process against a local receiver: the outcome of
each answer, the attempt log, retries and giving up, the claim, the sweep's recovery."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dispatcher.config import Settings, get_settings
from dispatcher.lifecycle.webhooks import change, create
from dispatcher.runtime.resources import database
from dispatcher.sending.webhook_events import Change, emit
from dispatcher.sending.webhook_posting import process_events, reserve_due
from models import (
    AttemptOutcome,
    ChannelType,
    WebhookEvent,
    WebhookEventAttempt,
    WebhookEventStatus,
    WebhookEventType,
)
from models.types import utcnow
from providers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from tests.dispatcher.lifecycle.support import integration, sent_delivery
from tests.dispatcher.webhook_receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.start()
    yield found
    found.stop()


def queued(organisation_id: uuid.UUID, url: str) -> tuple[uuid.UUID, str, uuid.UUID]:
    """(event row id, the endpoint's secret, its id) of one ``message.sent`` event."""
    view, secret = create(organisation_id, url=url, event_types=["message.sent"])
    delivery_id = sent_delivery(organisation_id, integration(organisation_id), f"m-{uuid.uuid4()}")
    with database().transaction() as session:
        (row_id,) = emit(session, [Change(
            organisation_id, WebhookEventType.MESSAGE_SENT, None, delivery_id,
            ChannelType.EMAIL, "sent",
        )])  # fmt: skip
    return row_id, secret, view.id


def row(row_id: uuid.UUID) -> WebhookEvent:
    with database().session() as session:
        found = session.get(WebhookEvent, row_id)
        assert found is not None
        session.expunge(found)
        return found


def attempts(row_id: uuid.UUID) -> list[tuple[AttemptOutcome, int | None]]:
    with database().session() as session:
        return [
            (item.outcome, item.http_status)
            for item in session.scalars(
                select(WebhookEventAttempt)
                .where(WebhookEventAttempt.webhook_event_id == row_id)
                .order_by(WebhookEventAttempt.created_at)
            )
        ]


def with_(**changes: object) -> Settings:
    return get_settings().model_copy(update=changes)


def test_a_2xx_is_sent_signed_and_logged(organisation_id: uuid.UUID, receiver: Receiver) -> None:
    row_id, secret, _ = queued(organisation_id, receiver.url)
    report = process_events([str(row_id)])
    assert (report.claimed, report.sent) == (1, 1)
    stored = row(row_id)
    assert (stored.status, stored.attempts, stored.http_status) == (WebhookEventStatus.SENT, 1, 200)
    assert stored.sent_at is not None
    assert attempts(row_id) == [(AttemptOutcome.SENT, 200)]
    (item,) = receiver.received
    assert item.body == item.body.strip() and item.event["id"] == str(stored.event_id)
    assert verify_signature(secret, item.headers[TIMESTAMP_HEADER.lower()], item.body,
                            item.headers[SIGNATURE_HEADER.lower()])  # fmt: skip
    # Claimed once: a redelivered message posts nothing again.
    assert process_events([str(row_id)]).claimed == 0
    assert len(receiver.received) == 1


def test_a_5xx_is_retried_later_then_given_up(
    organisation_id: uuid.UUID, receiver: Receiver
) -> None:
    receiver.status = 503
    row_id, _, _ = queued(organisation_id, receiver.url)
    before = utcnow()
    process_events([str(row_id)])
    stored = row(row_id)
    assert (stored.status, stored.attempts, stored.http_status) == (
        WebhookEventStatus.RETRYING, 1, 503,
    )  # fmt: skip
    assert stored.next_attempt_at is not None and stored.next_attempt_at >= before
    assert stored.last_error == "HTTP 503 from the endpoint"
    # Not due yet beyond the retry: the claim takes it once its time has come.
    with database().transaction() as session:
        session.execute(update(WebhookEvent).where(WebhookEvent.id == row_id)
                        .values(next_attempt_at=utcnow()))  # fmt: skip
    process_events([str(row_id)], with_(webhook_max_attempts=2))
    stored = row(row_id)
    assert stored.status is WebhookEventStatus.FAILED
    assert stored.last_error == "gave up after 2 attempts: HTTP 503 from the endpoint"
    assert attempts(row_id) == [(AttemptOutcome.RETRYABLE, 503)] * 2


def test_retry_after_is_honoured(organisation_id: uuid.UUID, receiver: Receiver) -> None:
    receiver.status, receiver.answer_headers = 429, {"Retry-After": "120"}
    row_id, _, _ = queued(organisation_id, receiver.url)
    process_events([str(row_id)])
    stored = row(row_id)
    assert stored.status is WebhookEventStatus.RETRYING
    assert stored.next_attempt_at is not None
    assert stored.next_attempt_at >= utcnow() + timedelta(seconds=110)


def test_a_refused_connection_is_retried(organisation_id: uuid.UUID) -> None:
    row_id, _, _ = queued(organisation_id, Receiver().url)  # nothing listens there
    process_events([str(row_id)])
    stored = row(row_id)
    assert (stored.status, stored.attempts) == (WebhookEventStatus.RETRYING, 1)
    assert attempts(row_id) == [(AttemptOutcome.RETRYABLE, None)]


def test_a_disabled_endpoints_events_fail_without_a_request(
    organisation_id: uuid.UUID, receiver: Receiver
) -> None:
    row_id, _, endpoint_id = queued(organisation_id, receiver.url)
    change(organisation_id, endpoint_id, enabled=False)
    process_events([str(row_id)])
    stored = row(row_id)
    assert (stored.status, stored.last_error) == (
        WebhookEventStatus.FAILED, "the endpoint is disabled",
    )  # fmt: skip
    assert receiver.received == [] and attempts(row_id) == []


def test_the_sweep_takes_back_a_post_whose_worker_stopped(
    organisation_id: uuid.UUID, receiver: Receiver
) -> None:
    row_id, _, _ = queued(organisation_id, receiver.url)
    with database().transaction() as session:
        session.execute(
            update(WebhookEvent).where(WebhookEvent.id == row_id).values(
                status=WebhookEventStatus.SENDING, claim_token=uuid.uuid4(),
                next_attempt_at=utcnow() - timedelta(seconds=1),
            )
        )  # fmt: skip
    batches = reserve_due()
    assert any(row_id in batch for batch in batches)
    assert row(row_id).status is WebhookEventStatus.RETRYING
    process_events([str(row_id)])
    assert row(row_id).status is WebhookEventStatus.SENT
    assert len(receiver.received) == 1

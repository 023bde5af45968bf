"""Claims are fenced: renewal and write-back act only on rows still held under the claim's token
(real PostgreSQL, rows made by a real trigger, the claiming and sweeping done here, in a database
no sweeper of the session's worker reserves from)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from dispatcher import trigger
from dispatcher.config import Settings, get_settings, reset_settings
from dispatcher.notifications.outbox import reserve_due
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from dispatcher.sending.execute import Attempt, Outcome
from dispatcher.sending.plan import Job
from dispatcher.sending.store import (
    BatchReport,
    claim,
    forget_expired_tokens,
    renew,
    write_outcomes,
)
from models import (
    AttemptOutcome,
    ChannelType,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Integration,
    Subscriber,
)
from models.types import utcnow
from providers.retry_after import MAX_RETRY_AFTER
from tests.dispatcher.notify_support import EMAIL_STEP, act, subscriber, workflow

LEASE = 30.0

pytestmark = pytest.mark.usefixtures("sweeper_free_database")


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[Settings]:
    """Delivery messages go to a queue no worker reads: this module does the claiming."""
    import redis

    queue = f"store-unconsumed-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DISPATCHER_DELIVERY_QUEUE", queue)
    monkeypatch.setenv("DISPATCHER_SEND_LEASE", str(LEASE))
    reset_settings()
    yield get_settings()
    monkeypatch.undo()
    reset_settings()
    client = redis.Redis.from_url(redis_url)
    client.delete(queue)
    client.close()


def deliveries(organisation_id: uuid.UUID, number: int) -> list[uuid.UUID]:
    act(
        organisation_id,
        "create_integration",
        {
            "name": "mail", "provider": "fake_http", "channel_type": "email",
            "credentials": {"api_key": "key"}, "settings": {"url": "http://127.0.0.1:9/mail"},
        },
    )  # fmt: skip
    workflow(organisation_id, "code", [EMAIL_STEP])
    for index in range(number):
        subscriber(organisation_id, f"s{index}")
        trigger(organisation_id, "code", f"s{index}", {"code": str(index)})
    with database().session() as session:
        return list(
            session.scalars(select(Delivery.id).where(Delivery.organisation_id == organisation_id))
        )


def claimed(ids: list[uuid.UUID], settings: Settings, *, expired: bool = False) -> uuid.UUID:
    """Claim ``ids`` under a new token; ``expired``: and let the send lease run out."""
    token = uuid.uuid4()
    with database().transaction() as session:
        assert sorted(claim(session, ids, settings, utcnow(), token)) == sorted(ids)
        if expired:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids))
                .values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )
    return token


def sent(organisation_id: uuid.UUID, delivery_id: uuid.UUID) -> tuple[Job, Outcome]:
    with database().session() as session:
        integration_id = session.scalar(
            select(Integration.id).where(Integration.organisation_id == organisation_id)
        )
        notification_id = session.scalar(
            select(Delivery.notification_id).where(Delivery.id == delivery_id)
        )
    assert integration_id is not None and notification_id is not None
    job = Job(delivery_id, organisation_id, notification_id, ChannelType.EMAIL, attempts=0)
    attempt = Attempt(
        delivery_id, organisation_id, integration_id, "fake", AttemptOutcome.SENT, 200, 1.0
    )
    outcome = Outcome(DeliveryStatus.SENT, provider="fake", provider_message_id="m-1")
    outcome.attempts.append(attempt)
    return job, outcome


def write(
    finished: list[tuple[Job, Outcome]], token: uuid.UUID, settings: Settings
) -> tuple[set[uuid.UUID], BatchReport]:
    report = BatchReport()
    with database().transaction() as session:
        written = write_outcomes(session, finished, token, utcnow(), report, settings)
    return written, report


def state(delivery_id: uuid.UUID) -> tuple[DeliveryStatus, int]:
    with database().session() as session:
        status = session.scalar(select(Delivery.status).where(Delivery.id == delivery_id))
        attempts = session.scalar(
            select(func.count()).where(DeliveryAttempt.delivery_id == delivery_id)
        )
    assert status is not None and attempts is not None
    return status, attempts


def test_a_stale_claim_cannot_write_over_the_new_holder(
    organisation_id: uuid.UUID, settings: Settings
) -> None:
    [delivery_id] = deliveries(organisation_id, 1)
    # The first holder's lease ran out, and a second worker claimed the row again.
    stale = claimed([delivery_id], settings, expired=True)
    current = claimed([delivery_id], settings)

    written, report = write([sent(organisation_id, delivery_id)], stale, settings)
    assert written == set()
    assert report.lost == 1 and report.sent == 0
    assert state(delivery_id) == (DeliveryStatus.SENDING, 0)

    written, report = write([sent(organisation_id, delivery_id)], current, settings)
    assert written == {delivery_id}
    assert report.sent == 1 and report.lost == 0
    assert state(delivery_id) == (DeliveryStatus.SENT, 1)
    # Written once: the same outcomes again (a retry after a lost connection) write nothing.
    written, _ = write([sent(organisation_id, delivery_id)], current, settings)
    assert written == set()
    assert state(delivery_id) == (DeliveryStatus.SENT, 1)


def test_renewal_keeps_the_rows_from_the_sweeper(
    organisation_id: uuid.UUID, settings: Settings
) -> None:
    renewed_id, abandoned_id = deliveries(organisation_id, 2)
    # Both leases ran out: both rows are due for the sweeper now.
    renewed = claimed([renewed_id], settings, expired=True)
    claimed([abandoned_id], settings, expired=True)
    with database().transaction() as session:
        assert renew(session, [renewed_id], renewed, LEASE, utcnow()) == {renewed_id}

    swept = {item for _, ids in reserve_due(settings).ordered for item in ids}

    assert abandoned_id in swept
    assert renewed_id not in swept
    assert state(renewed_id) == (DeliveryStatus.SENDING, 0)
    assert state(abandoned_id) == (DeliveryStatus.RETRYING, 0)


def test_renewal_answers_only_the_rows_still_held(
    organisation_id: uuid.UUID, settings: Settings
) -> None:
    kept_id, swept_id, reclaimed_id, written_id = deliveries(organisation_id, 4)
    token = claimed([kept_id, written_id], settings)
    stale = claimed([swept_id, reclaimed_id], settings, expired=True)
    # One row taken by the sweeper, one claimed by another worker, one written back already.
    assert swept_id in {item for _, ids in reserve_due(settings).ordered for item in ids}
    claimed([reclaimed_id], settings)
    assert write([sent(organisation_id, written_id)], token, settings)[0] == {written_id}

    with database().transaction() as session:
        assert renew(session, [kept_id, written_id], token, LEASE, utcnow()) == {kept_id}
        assert renew(session, [swept_id, reclaimed_id], stale, LEASE, utcnow()) == set()
    # The stale holder's renewal moved nothing: the new holder's lease is its own.
    assert state(reclaimed_id) == (DeliveryStatus.SENDING, 0)
    assert state(swept_id) == (DeliveryStatus.RETRYING, 0)


@pytest.mark.parametrize("delay", [float("inf"), 1e300, float("nan"), -5.0])
def test_an_absurd_retry_delay_is_written_back_bounded_not_raised(
    organisation_id: uuid.UUID, settings: Settings, delay: float
) -> None:
    # now + timedelta(seconds=inf) raises OverflowError, which would fail the write-back of
    # the whole batch (and have its sent deliveries sent again when it is taken over).
    [delivery_id, other] = deliveries(organisation_id, 2)
    token = claimed([delivery_id, other], settings)
    job, _ = sent(organisation_id, delivery_id)
    waiting = Outcome(DeliveryStatus.RETRYING, reason="held", delay=delay)
    written, report = write([(job, waiting), sent(organisation_id, other)], token, settings)
    assert written == {delivery_id, other}
    assert report.sent == 1
    [(_, kept, _)] = report.retrying
    assert 0.0 <= kept <= MAX_RETRY_AFTER
    with database().session() as session:
        due = session.scalar(select(Delivery.next_attempt_at).where(Delivery.id == delivery_id))
    assert due is not None
    assert due <= utcnow() + timedelta(seconds=MAX_RETRY_AFTER + settings.enqueue_lease + 60)


def test_expired_device_tokens_are_removed_from_the_subscriber(organisation_id: uuid.UUID) -> None:
    other_organisation = create_organisation(f"other-{uuid.uuid4().hex[:8]}")
    tokens = ["gone-1", "alive", "gone-2"]
    mine = subscriber(organisation_id, "ada", channels={"push": {"device_tokens": tokens}})
    theirs = subscriber(other_organisation, "ada", channels={"push": {"device_tokens": tokens}})
    attempt = Attempt(
        uuid.uuid4(), organisation_id, uuid.uuid4(), "webpush", AttemptOutcome.SENT, 201, 1.0,
        expired_tokens=("gone-1", "gone-2"),
    )  # fmt: skip
    outcome = Outcome(DeliveryStatus.SENT, attempts=[attempt])
    job = Job(
        attempt.delivery_id, organisation_id, uuid.uuid4(), ChannelType.PUSH, attempts=0,
        subscriber_id=mine,
    )  # fmt: skip
    # A job naming the other organisation's subscriber under this organisation changes nothing.
    stray = Job(
        attempt.delivery_id, organisation_id, uuid.uuid4(), ChannelType.PUSH, attempts=0,
        subscriber_id=theirs,
    )  # fmt: skip
    with database().transaction() as session:
        forget_expired_tokens(session, [(job, outcome), (stray, outcome)])
    with database().session() as session:
        kept = {
            row.id: row.channels["push"]["device_tokens"]
            for row in session.scalars(select(Subscriber).where(Subscriber.id.in_([mine, theirs])))
        }
    assert kept == {mine: ["alive"], theirs: tokens}

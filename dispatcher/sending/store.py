"""The delivery rows of a batch: claim them, read their due times, write the outcomes back.

Everything here is database work; :mod:`dispatcher.sending.batch` decides what to call when.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, event, func, insert, or_, select, update
from sqlalchemy.orm import Session

from dispatcher.config import Settings
from dispatcher.runtime import inbox_events
from dispatcher.runtime.resources import database
from dispatcher.sending.circuit import CircuitView
from dispatcher.sending.execute import Attempt, Outcome
from dispatcher.sending.fetch import AFTER_FETCH, merge_answer
from dispatcher.sending.plan import Job, fetch_failed
from dispatcher.sending.routing import watch_rows
from dispatcher.sending.webhook_events import Change, emit, sending_change
from models import (
    TERMINAL_DELIVERY_STATUSES,
    ChannelType,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    DeliveryWatch,
    InboxMessage,
    Integration,
    IntegrationStatus,
    Notification,
    NotificationStatus,
    Subscriber,
)
from models.bulk import among, insert_many, update_many
from models.ids import new_id, new_row_id
from models.types import utcnow
from providers.retry_after import bounded_wait

logger = logging.getLogger(__name__)


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    #: Recorded ``unknown``: the provider may have sent them; not resent (``on_ambiguous``).
    unknown: int = 0
    #: Claimed but not written by this batch: taken over by the sweeper or another worker first
    #: (or, after a lost connection hid a commit, written already).
    lost: int = 0
    #: (delivery id, seconds until the retry, critical)
    retrying: list[tuple[uuid.UUID, float, bool]] = field(default_factory=list)
    #: Deliveries made due by the fetch step they waited for: (id, seconds until due, critical).
    released: list[tuple[uuid.UUID, float, bool]] = field(default_factory=list)
    #: Outbound webhook events written with the outcomes, to hand to the broker.
    webhook_events: list[uuid.UUID] = field(default_factory=list)
    #: What was planned and how it ended, for the metrics (not part of the task's result).
    jobs: list[Job] = field(default_factory=list, repr=False)
    outcomes: dict[uuid.UUID, Outcome] = field(default_factory=dict, repr=False)
    claimed_at: datetime | None = None
    due: dict[uuid.UUID, datetime] = field(default_factory=dict, repr=False)

    def tally(self, status: DeliveryStatus) -> None:
        """Count a delivery that ended unsent: failed, unknown or skipped."""
        if status is DeliveryStatus.FAILED:
            self.failed += 1
        elif status is DeliveryStatus.UNKNOWN:
            self.unknown += 1
        else:
            self.skipped += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed, "sent": self.sent, "failed": self.failed,
            "skipped": self.skipped, "unknown": self.unknown, "retrying": len(self.retrying),
            "lost": self.lost,
        }  # fmt: skip


def claim(
    session: Session,
    ids: list[uuid.UUID],
    settings: Settings,
    now: datetime,
    token: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Take the deliveries no one else is sending; terminal ones are left alone. The rows carry
    ``token`` (a fresh one if none is given) until the next claim: :func:`renew` and
    :func:`write_outcomes` act only on rows that still carry it."""
    reserved = now + timedelta(seconds=settings.enqueue_lease)
    claimable = or_(
        and_(
            Delivery.status.in_([DeliveryStatus.QUEUED, DeliveryStatus.RETRYING]),
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= reserved),
        ),
        and_(Delivery.status == DeliveryStatus.SENDING, Delivery.next_attempt_at <= now),
    )
    return list(
        session.scalars(
            update(Delivery)
            .where(among(session, Delivery.id, ids), claimable)
            .values(
                status=DeliveryStatus.SENDING,
                next_attempt_at=now + timedelta(seconds=settings.send_lease),
                claim_token=token or new_id(),
                updated_at=now,
            )
            .returning(Delivery.id)
        )
    )


def _ours(session: Session, ids: Collection[uuid.UUID], token: uuid.UUID) -> ColumnElement[bool]:
    """Rows of ``ids`` still held under ``token``: claimed with it and neither written back nor
    taken by the sweeper (which sets them ``retrying``) since."""
    return and_(
        among(session, Delivery.id, ids),
        Delivery.claim_token == token,
        Delivery.status == DeliveryStatus.SENDING,
    )


def renew(
    session: Session, ids: Collection[uuid.UUID], token: uuid.UUID, lease: float, now: datetime
) -> set[uuid.UUID]:
    """Extend the send lease of the rows still held under ``token``; answers which those are
    (a row missing was taken over and must not be sent)."""
    if not ids:
        return set()
    return set(
        session.scalars(
            update(Delivery)
            .where(_ours(session, ids, token))
            .values(next_attempt_at=now + timedelta(seconds=lease))
            .returning(Delivery.id)
        )
    )


def still_held(session: Session, ids: Collection[uuid.UUID], token: uuid.UUID) -> set[uuid.UUID]:
    """Which of ``ids`` are still held under ``token`` (a cancelled or taken-over row is not)."""
    if not ids:
        return set()
    return set(session.scalars(select(Delivery.id).where(_ours(session, ids, token))))


def write_outcomes(  # noqa: PLR0917 - private helper of the batch's lease
    session: Session,
    finished: list[tuple[Job, Outcome]],
    token: uuid.UUID,
    now: datetime,
    report: BatchReport,
    settings: Settings,
) -> set[uuid.UUID]:
    """Write the outcomes of the rows still held under ``token`` (locked first, so neither the
    sweeper nor a new claim can take them meanwhile); the others belong to someone else now and
    are counted as ``lost``. Outcomes written once are not written again (nor their attempts).
    Answers the ids written."""
    ids = [job.delivery_id for job, _ in finished]
    held = set(
        session.scalars(select(Delivery.id).where(_ours(session, ids, token)).with_for_update())
    )
    report.lost += len(ids) - len(held)
    _write_back(
        session, [item for item in finished if item[0].delivery_id in held], now, report, settings
    )
    return held


def mark_circuits(circuit: CircuitView) -> None:
    with database().transaction() as session:
        _mark_circuits(session, circuit)


def log_unknown(ids: list[uuid.UUID], claimed: list[uuid.UUID]) -> None:
    """Finished deliveries in a redelivered batch are normal; ids that name no delivery are not
    (rows deleted since they were enqueued, or a hand-made message)."""
    rest = set(ids) - set(claimed)
    with database().session() as session:
        existing = set(
            session.scalars(select(Delivery.id).where(among(session, Delivery.id, rest)))
        )
    if unknown := len(rest - existing):
        logger.warning("deliver: ignoring %d delivery ids that name no delivery", unknown)


def _write_back(
    session: Session,
    finished: list[tuple[Job, Outcome]],
    now: datetime,
    report: BatchReport,
    settings: Settings,
) -> None:
    if not finished:
        return
    updates: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    inbox: list[dict[str, Any]] = []
    for job, outcome in finished:
        row: dict[str, Any] = {
            "id": job.delivery_id,
            "status": outcome.status,
            "attempts": job.attempts + len(outcome.attempts),
            "last_error": outcome.reason,
            "updated_at": now,
            "next_attempt_at": None,
        }
        if job.content:
            row["content"] = job.content
        if outcome.integration_id is not None:
            row["integration_id"] = outcome.integration_id
        if outcome.provider is not None:
            row["provider"] = outcome.provider
        if outcome.status is DeliveryStatus.SENT:
            row.update(
                sent_at=now,
                provider_message_id=_fit(outcome.provider_message_id, 500),
                last_error=None,
            )
            report.sent += 1
            if job.channel is ChannelType.IN_APP and job.message is not None and job.subscriber_id:
                inbox.append(_inbox_row(job, now))
        elif outcome.status is DeliveryStatus.RETRYING:
            # Bounded whatever computed it: a timedelta of an infinite or enormous delay
            # raises, and one raise here fails the write-back of the whole batch.
            delay = bounded_wait(outcome.delay) or 0.0
            due = now + timedelta(seconds=delay)
            if delay <= settings.retry_countdown_limit:
                # A countdown message is sent for it; the sweeper steps in only if it is lost.
                due += timedelta(seconds=settings.enqueue_lease)
            row["next_attempt_at"] = due
            report.retrying.append((job.delivery_id, delay, job.critical))
        else:
            report.tally(outcome.status)
        updates.append(row)
        attempts.extend(_attempt_row(attempt) for attempt in outcome.attempts)
    update_many(session, Delivery, updates)
    insert_many(session, DeliveryAttempt, attempts)
    insert_many(session, DeliveryWatch, watch_rows(finished, now))
    if inbox:
        session.execute(insert(InboxMessage), inbox)
        published = [
            inbox_events.event(row["organisation_id"], row["subscriber_id"], row["id"])
            for row in inbox
        ]
        # After the commit: a page told of a message it cannot read yet would miss it.
        event.listen(session, "after_commit", lambda _: inbox_events.publish(published), once=True)
    fetches = [
        (job, outcome)
        for job, outcome in finished
        if job.fetch_position is not None and outcome.status in TERMINAL_DELIVERY_STATUSES
    ]
    if fetches:
        _after_fetches(session, fetches, now, report, settings)
    forget_expired_tokens(session, finished)
    # In this transaction: the events exist exactly when the outcomes they report do.
    report.webhook_events.extend(emit(session, _changes(finished), now))
    update_notification_statuses(session, {job.notification_id for job, _ in finished}, now)


def _changes(finished: list[tuple[Job, Outcome]]) -> list[Change]:
    """The outbound webhook events the outcomes report (a fetch step is no message)."""
    changes = (
        sending_change(
            job.organisation_id, job.notification_id, job.delivery_id, job.channel,
            outcome.status, outcome.reason,
        )
        for job, outcome in finished
        if job.fetch_position is None
    )  # fmt: skip
    return [change for change in changes if change is not None]


def _after_fetches(
    session: Session,
    finished: list[tuple[Job, Outcome]],
    now: datetime,
    report: BatchReport,
    settings: Settings,
) -> None:
    """In the transaction that writes the fetches' outcomes: each answer merged into its
    notification's payload, and the deliveries waiting for the fetch made due (sent or
    skipped) or failed with its reason (a chain of fetches fails whole)."""
    notification_ids = {job.notification_id for job, _ in finished}
    answers = {
        job.notification_id: (outcome.fetched, job.fetch)
        for job, outcome in finished
        if outcome.status is DeliveryStatus.SENT and outcome.fetched is not None
    }
    if answers:
        payloads = session.execute(
            select(Notification.id, Notification.payload)
            .where(among(session, Notification.id, answers))
            .with_for_update()
        )
        update_many(session, Notification, [
            {"id": row.id, "payload": merge_answer(row.payload, fetched.value, request.merge_key),
             "updated_at": now}
            for row in payloads
            for fetched, request in [answers[row.id]]
            if fetched is not None and request is not None
        ])  # fmt: skip
    waiting = session.execute(
        select(Delivery.id, Delivery.notification_id, Delivery.step_position, Delivery.meta,
               Delivery.critical)
        .where(
            among(session, Delivery.notification_id, notification_ids),
            Delivery.status == DeliveryStatus.QUEUED,
            Delivery.next_attempt_at.is_(None),
        )
        .with_for_update()
    ).all()  # fmt: skip
    changes: list[dict[str, Any]] = []
    for job, outcome in finished:
        position = job.fetch_position
        assert position is not None
        proceeds = outcome.status in {DeliveryStatus.SENT, DeliveryStatus.SKIPPED}
        for row in waiting:
            wait = (row.meta or {}).get(AFTER_FETCH)
            if row.notification_id != job.notification_id or not isinstance(wait, dict):
                continue
            if proceeds and wait.get("position") == position:
                delay = float(wait.get("delay") or 0.0)
                due = now + timedelta(seconds=delay)
                if delay <= settings.retry_countdown_limit:
                    due += timedelta(seconds=settings.enqueue_lease)  # a message is sent
                changes.append({"id": row.id, "next_attempt_at": due, "updated_at": now})
                report.released.append((row.id, delay, row.critical))
            elif not proceeds and row.step_position > position:
                changes.append({
                    "id": row.id, "status": DeliveryStatus.FAILED, "updated_at": now,
                    "last_error": fetch_failed(position, outcome.reason),
                })  # fmt: skip
                report.failed += 1
    update_many(session, Delivery, changes)


def forget_expired_tokens(session: Session, finished: list[tuple[Job, Outcome]]) -> None:
    """Remove from each subscriber the device tokens its provider said are gone (Web Push
    404/410), so later deliveries neither try them nor fail on them."""
    expired: dict[tuple[uuid.UUID, uuid.UUID], set[str]] = {}
    for job, outcome in finished:
        tokens = {token for attempt in outcome.attempts for token in attempt.expired_tokens}
        if tokens and job.subscriber_id is not None:
            expired.setdefault((job.organisation_id, job.subscriber_id), set()).update(tokens)
    for (organisation_id, subscriber_id), tokens in expired.items():
        subscriber = session.scalars(
            select(Subscriber)
            .where(Subscriber.id == subscriber_id, Subscriber.organisation_id == organisation_id)
            .with_for_update()
        ).first()
        push = (subscriber.channels or {}).get("push") if subscriber is not None else None
        if subscriber is None or not isinstance(push, dict):
            continue
        kept = [token for token in push.get("device_tokens") or () if token not in tokens]
        subscriber.channels = {**subscriber.channels, "push": {**push, "device_tokens": kept}}
        logger.info("removed %d expired device tokens of a subscriber", len(tokens))


def _attempt_row(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": new_row_id(),
        "organisation_id": attempt.organisation_id,
        "delivery_id": attempt.delivery_id,
        "integration_id": attempt.integration_id,
        "provider": attempt.provider,
        "outcome": attempt.outcome,
        "http_status": attempt.http_status,
        "latency_ms": round(attempt.latency_ms, 3),
        "error_class": attempt.error_class,
        "error": attempt.error,
        "meta": {},
        "created_at": attempt.at,
    }


def _inbox_row(job: Job, now: datetime) -> dict[str, Any]:
    assert job.message is not None
    return {
        "id": new_row_id(),
        "organisation_id": job.organisation_id,
        "subscriber_id": job.subscriber_id,
        "delivery_id": job.delivery_id,
        "title": _fit(job.message.title or job.message.subject, 500),
        "body": job.message.body,
        "data": job.message.data,
        "tags": _tags(job.message.options.get("tags")),
        "actions": _actions(job.message.options),
        "meta": {},
        "created_at": now,
        "updated_at": now,
    }


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [_fit(str(tag), 100) or "" for tag in value][:20]


def _actions(options: dict[str, Any]) -> dict[str, Any]:
    """``primaryAction``/``secondaryAction`` (``{"label", "url"}``) of the step's options."""
    found: dict[str, Any] = {}
    for kind in ("primary", "secondary"):
        action = options.get(f"{kind}Action")
        if isinstance(action, dict) and isinstance(action.get("label"), str):
            url = action.get("url")
            found[kind] = {"label": action["label"], "url": url if isinstance(url, str) else None}
    return found


def update_notification_statuses(
    session: Session, notification_ids: Collection[uuid.UUID], now: datetime
) -> None:
    """Each notification's status from its deliveries' (processing while any is open)."""
    terminal = [status.value for status in TERMINAL_DELIVERY_STATUSES]
    rows = session.execute(
        select(
            Delivery.notification_id,
            func.count().filter(Delivery.status.notin_(terminal)),
            func.count().filter(Delivery.status == DeliveryStatus.SENT),
            func.count().filter(Delivery.status == DeliveryStatus.FAILED),
        )
        .where(among(session, Delivery.notification_id, notification_ids))
        .group_by(Delivery.notification_id)
    ).all()
    changes = []
    for notification_id, open_count, sent, failed in rows:
        if open_count:
            status = NotificationStatus.PROCESSING
        elif failed and not sent:
            status = NotificationStatus.FAILED
        else:
            status = NotificationStatus.COMPLETED
        changes.append({"id": notification_id, "status": status, "updated_at": now})
    update_many(session, Notification, changes)


def _mark_circuits(session: Session, circuit: CircuitView) -> None:
    now = utcnow()
    # Every worker that saw the circuit open or close reports it; the status changes once.
    for integration_id in circuit.opened:
        changed = session.execute(
            update(Integration)
            .where(Integration.id == integration_id, Integration.status == IntegrationStatus.ACTIVE)
            .values(status=IntegrationStatus.ERROR, updated_at=now)
            .returning(Integration.id)
        ).first()
        if changed:
            logger.warning("integration %s: circuit opened", integration_id)
    for integration_id in circuit.closed:
        changed = session.execute(
            update(Integration)
            .where(Integration.id == integration_id, Integration.status == IntegrationStatus.ERROR)
            .values(status=IntegrationStatus.ACTIVE, updated_at=now)
            .returning(Integration.id)
        ).first()
        if changed:
            logger.info("integration %s: circuit closed", integration_id)


def _fit(text: str | None, length: int) -> str | None:
    """Provider answers and rendered titles are foreign input: cut to the column's width, so
    one long value cannot fail the write-back of a whole batch."""
    return text[:length] if text else None


def due_at(
    status: DeliveryStatus,
    next_attempt_at: datetime | None,
    created_at: datetime,
    enqueue_lease: float,
) -> datetime:
    """When a delivery became due, from its row as it was just before the claim.

    A queued or retrying row handed to the broker holds a reservation: its ``next_attempt_at`` is
    the hand-over plus ``enqueue_lease``, and the hand-over happens when the row is due (at the
    trigger, at a retry's countdown, or at the sweep that found it due). A row being sent is due
    again once its send lease ran out.
    """
    if next_attempt_at is None:
        return created_at
    if status is DeliveryStatus.SENDING:
        return next_attempt_at
    return max(created_at, next_attempt_at - timedelta(seconds=enqueue_lease))


def due_times(
    session: Session, ids: Collection[uuid.UUID], enqueue_lease: float
) -> dict[uuid.UUID, datetime]:
    """Due times of these deliveries, read before the claim overwrites ``next_attempt_at``."""
    if not ids:
        return {}
    rows = session.execute(
        select(Delivery.id, Delivery.status, Delivery.next_attempt_at, Delivery.created_at).where(
            among(session, Delivery.id, ids)
        )
    )
    return {
        row.id: due_at(row.status, row.next_attempt_at, row.created_at, enqueue_lease)
        for row in rows
    }

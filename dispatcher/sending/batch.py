"""One delivery batch, start to finish: claim, plan, send, write back, schedule retries."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import redis
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from dispatcher.actions.runner import DATABASE_UNAVAILABLE
from dispatcher.config import Settings, get_settings
from dispatcher.metrics import due_times, record_batch
from dispatcher.rendering import TemplateRenderer
from dispatcher.runtime import database
from dispatcher.sending.circuit import CircuitStore, MemoryCircuitStore, RedisCircuitStore
from dispatcher.sending.execute import Attempt, BatchSender, CircuitView, Outcome, Policy
from dispatcher.sending.plan import Job, build_jobs, load
from dispatcher.sending.runtime import SendingRuntime
from models import (
    TERMINAL_DELIVERY_STATUSES,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    InboxMessage,
    Integration,
    IntegrationStatus,
    Notification,
    NotificationStatus,
)
from models.bulk import among, insert_many, update_many
from models.types import utcnow

logger = logging.getLogger(__name__)


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    #: (delivery id, seconds until the retry, critical)
    retrying: list[tuple[uuid.UUID, float, bool]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed, "sent": self.sent, "failed": self.failed,
            "skipped": self.skipped, "retrying": len(self.retrying),
        }  # fmt: skip


@lru_cache(maxsize=1)
def sending_runtime() -> SendingRuntime:
    settings = get_settings()
    return SendingRuntime(
        timeout=settings.send_timeout,
        max_connections=max(100, settings.send_concurrency_per_integration * 4),
    )


@lru_cache(maxsize=1)
def renderer() -> TemplateRenderer:
    settings = get_settings()
    return TemplateRenderer(
        timeout=settings.template_render_timeout, max_length=settings.max_rendered_length
    )


@lru_cache(maxsize=1)
def circuit_store() -> CircuitStore:
    settings = get_settings()
    url = settings.resolved_broker_url
    if url.startswith(("redis://", "rediss://")):
        return RedisCircuitStore(
            redis.Redis.from_url(url, socket_timeout=5),
            threshold=settings.circuit_failure_threshold,
            cooldown=settings.circuit_cooldown,
        )
    return MemoryCircuitStore(
        threshold=settings.circuit_failure_threshold, cooldown=settings.circuit_cooldown
    )


def policy(settings: Settings) -> Policy:
    return Policy(
        max_attempts_per_integration=settings.max_attempts_per_integration,
        max_attempts_per_delivery=settings.max_attempts_per_delivery,
        retry_base_delay=settings.retry_base_delay,
        retry_max_delay=settings.retry_max_delay,
        circuit_cooldown=settings.circuit_cooldown,
        concurrency_per_integration=settings.send_concurrency_per_integration,
        url_allowlist=tuple(settings.url_allowlist),
    )


def claim(
    session: Session, ids: list[uuid.UUID], settings: Settings, now: datetime
) -> list[uuid.UUID]:
    """Take the deliveries no one else is sending; terminal ones are left alone."""
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
                updated_at=now,
            )
            .returning(Delivery.id)
        )
    )


def process_batch(raw_ids: list[str], settings: Settings | None = None) -> BatchReport:
    settings = settings or get_settings()
    ids = _parse_ids(raw_ids)
    report = BatchReport()
    now = utcnow()
    db = database()
    with db.transaction() as session:
        due = due_times(session, ids, settings.enqueue_lease)
        claimed = claim(session, ids, settings, now)
    report.claimed = len(claimed)
    if len(claimed) < len(ids):
        _log_unknown(ids, claimed)
    if not claimed:
        return report
    with db.session() as session:
        loaded = load(session, claimed, settings.environment)
        jobs = build_jobs(loaded, renderer())
    to_send = [job for job in jobs if job.decided is None and job.channel.value != "in_app"]
    circuit = _circuit_view(
        circuit_store(), {c.integration_id for j in to_send for c in j.candidates}
    )
    runtime = sending_runtime()
    outcomes: dict[uuid.UUID, Outcome] = {}
    if to_send:
        outcomes = runtime.run(BatchSender(runtime, policy(settings), circuit).send_all(to_send))
    for job in jobs:
        if job.decided is not None:
            outcomes[job.delivery_id] = Outcome(status=job.decided[0], reason=job.decided[1])
        elif job.channel.value == "in_app":
            outcomes[job.delivery_id] = Outcome(status="sent", provider="inbox")
    lease_end = now + timedelta(seconds=settings.send_lease)
    report = _write_back_while_leased(jobs, outcomes, circuit, report.claimed, settings, lease_end)
    record_batch(jobs, outcomes, claimed_at=now, due=due)
    return report


def _circuit_view(store: CircuitStore, integration_ids: set[uuid.UUID]) -> CircuitView:
    """The breaker is advisory: if its store (Redis) is unreachable, sends go on as if every
    circuit were closed, rather than failing a batch whose messages may already be out."""

    def guarded(record: Callable[[str], bool]) -> Callable[[uuid.UUID], bool]:
        def call(integration_id: uuid.UUID) -> bool:
            try:
                return record(str(integration_id))
            except redis.RedisError as exc:
                logger.warning("circuit store unavailable (%s)", type(exc).__name__)
                return False

        return call

    try:
        open_ids = {uuid.UUID(item) for item in store.open_many([str(i) for i in integration_ids])}
    except redis.RedisError as exc:
        logger.warning(
            "circuit store unavailable (%s): circuits taken as closed", type(exc).__name__
        )
        open_ids = set()

    def hold(integration_id: uuid.UUID, seconds: float) -> None:
        try:
            store.hold(str(integration_id), seconds)
        except redis.RedisError as exc:
            logger.warning("circuit store unavailable (%s)", type(exc).__name__)

    return CircuitView(open_ids, guarded(store.record_failure), guarded(store.record_success), hold)


def _write_back_while_leased(  # noqa: PLR0917 - private helper of one caller
    jobs: list[Job],
    outcomes: dict[uuid.UUID, Outcome],
    circuit: CircuitView,
    claimed: int,
    settings: Settings,
    lease_end: datetime,
) -> BatchReport:
    """Write the outcomes, waiting out a database outage while the send lease holds: these
    messages are out, and outcomes not written would be sent again once the lease passes."""
    db = database()
    delay, retried = 0.5, False
    while True:
        report = BatchReport(claimed=claimed)
        try:
            with db.transaction() as session:
                if retried and _written(session, jobs):
                    # The lost connection hid a commit that went through; the retries it
                    # scheduled are left to the sweeper.
                    return report
                _write_back(session, jobs, outcomes, utcnow(), report, settings)
                _mark_circuits(session, circuit)
            return report
        except DATABASE_UNAVAILABLE as exc:
            if utcnow() + timedelta(seconds=delay) >= lease_end:
                raise
            logger.warning(
                "deliver: database unavailable (%s) writing %d outcomes; retrying in %gs",
                type(exc).__name__, len(jobs), delay,
            )  # fmt: skip
            time.sleep(delay)
            delay, retried = min(delay * 2, 2.0), True


def _written(session: Session, jobs: list[Job]) -> bool:
    """Our claimed rows stay ``sending`` until the write-back commits, and nobody else may touch
    them before the lease ends."""
    status = session.scalar(select(Delivery.status).where(Delivery.id == jobs[0].delivery_id))
    return status is not DeliveryStatus.SENDING


def _log_unknown(ids: list[uuid.UUID], claimed: list[uuid.UUID]) -> None:
    """Finished deliveries in a redelivered batch are normal; ids that name no delivery are not
    (rows deleted since they were enqueued, or a hand-made message)."""
    rest = set(ids) - set(claimed)
    with database().session() as session:
        existing = set(
            session.scalars(select(Delivery.id).where(among(session, Delivery.id, rest)))
        )
    if unknown := len(rest - existing):
        logger.warning("deliver: ignoring %d delivery ids that name no delivery", unknown)


def _parse_ids(raw_ids: list[str]) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for raw in raw_ids:
        try:
            ids.append(uuid.UUID(str(raw)))
        except ValueError:
            logger.warning("deliver: ignoring a delivery id that is not a UUID")
    return ids


def _write_back(  # noqa: PLR0917 - one branch per outcome; private helper
    session: Session,
    jobs: list[Job],
    outcomes: dict[uuid.UUID, Outcome],
    now: datetime,
    report: BatchReport,
    settings: Settings,
) -> None:
    updates: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    inbox: list[dict[str, Any]] = []
    for job in jobs:
        outcome = outcomes[job.delivery_id]
        row: dict[str, Any] = {
            "id": job.delivery_id,
            "status": DeliveryStatus(outcome.status),
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
        if outcome.status == "sent":
            row.update(
                sent_at=now,
                provider_message_id=_fit(outcome.provider_message_id, 500),
                last_error=None,
            )
            report.sent += 1
            if job.channel.value == "in_app" and job.message is not None and job.subscriber_id:
                inbox.append(_inbox_row(job, now))
        elif outcome.status == "retrying":
            delay = outcome.delay or 0.0
            due = now + timedelta(seconds=delay)
            if delay <= settings.retry_countdown_limit:
                # A countdown message is sent for it; the sweeper steps in only if it is lost.
                due += timedelta(seconds=settings.enqueue_lease)
            row["next_attempt_at"] = due
            report.retrying.append((job.delivery_id, delay, job.critical))
        elif outcome.status == "failed":
            report.failed += 1
        else:
            report.skipped += 1
        updates.append(row)
        attempts.extend(_attempt_row(attempt) for attempt in outcome.attempts)
    update_many(session, Delivery, updates)
    insert_many(session, DeliveryAttempt, attempts)
    if inbox:
        session.execute(insert(InboxMessage), inbox)
    _update_notifications(session, {job.notification_id for job in jobs}, now)


def _attempt_row(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
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
        "id": uuid.uuid4(),
        "organisation_id": job.organisation_id,
        "subscriber_id": job.subscriber_id,
        "delivery_id": job.delivery_id,
        "title": _fit(job.message.title or job.message.subject, 500),
        "body": job.message.body,
        "data": job.message.data,
        "meta": {},
        "created_at": now,
        "updated_at": now,
    }


def _update_notifications(
    session: Session, notification_ids: set[uuid.UUID], now: datetime
) -> None:
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

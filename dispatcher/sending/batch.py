"""One delivery batch, start to finish: claim, plan, send, write back, schedule retries."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import redis
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from dispatcher.config import Settings, get_settings
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
            .where(Delivery.id.in_(ids), claimable)
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
        claimed = claim(session, ids, settings, now)
    report.claimed = len(claimed)
    if not claimed:
        return report
    with db.session() as session:
        loaded = load(session, claimed, settings.environment)
        jobs = build_jobs(loaded, renderer())
    to_send = [job for job in jobs if job.decided is None and job.channel.value != "in_app"]
    store = circuit_store()
    candidate_ids = {c.integration_id for job in to_send for c in job.candidates}
    circuit = CircuitView(
        {uuid.UUID(item) for item in store.open_many([str(i) for i in candidate_ids])},
        lambda integration_id: store.record_failure(str(integration_id)),
        lambda integration_id: store.record_success(str(integration_id)),
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
    with db.transaction() as session:
        _write_back(session, jobs, outcomes, utcnow(), report, settings)
        _mark_circuits(session, circuit)
    return report


def _parse_ids(raw_ids: list[str]) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for raw in raw_ids:
        try:
            ids.append(uuid.UUID(str(raw)))
        except ValueError:
            logger.warning("deliver: ignoring a delivery id that is not a UUID")
    return ids


def _write_back(  # noqa: PLR0912, PLR0917 - one branch per outcome; private helper
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
                sent_at=now, provider_message_id=outcome.provider_message_id, last_error=None
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
    # Bulk UPDATE by primary key, one statement per distinct column set.
    by_columns: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for row in updates:
        by_columns[frozenset(row)].append(row)
    for rows in by_columns.values():
        session.execute(update(Delivery), rows)
    if attempts:
        session.execute(insert(DeliveryAttempt), attempts)
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
        "title": job.message.title or job.message.subject,
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
        .where(Delivery.notification_id.in_(notification_ids))
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
    if changes:
        session.execute(update(Notification), changes)


def _mark_circuits(session: Session, circuit: CircuitView) -> None:
    now = utcnow()
    for integration_id in circuit.opened:
        logger.warning("integration %s: circuit opened", integration_id)
        session.execute(
            update(Integration)
            .where(Integration.id == integration_id, Integration.status == IntegrationStatus.ACTIVE)
            .values(status=IntegrationStatus.ERROR, updated_at=now)
        )
    for integration_id in circuit.closed:
        logger.info("integration %s: circuit closed", integration_id)
        session.execute(
            update(Integration)
            .where(Integration.id == integration_id, Integration.status == IntegrationStatus.ERROR)
            .values(status=IntegrationStatus.ACTIVE, updated_at=now)
        )

"""Beat jobs besides the outbox sweep: fire scheduled triggers, purge old delivery records,
probe integrations whose circuit has cooled down (:mod:`dispatcher.sending.probe`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, exists, select
from sqlalchemy.orm import aliased

from dispatcher.celery_app import app
from dispatcher.config import Settings, get_settings
from dispatcher.notifications.scheduling import fire_due
from dispatcher.notifications.throttling import prune_expired_windows
from dispatcher.observability.metrics import record_undecryptable
from dispatcher.runtime.resources import database
from dispatcher.runtime.startup import check_stored_credentials
from dispatcher.sending.probe import probe
from models import (
    TERMINAL_DELIVERY_STATUSES,
    TERMINAL_WEBHOOK_EVENT_STATUSES,
    Delivery,
    DeliveryAttempt,
    Notification,
    WebhookEvent,
    WebhookEventAttempt,
)
from models.types import utcnow

logger = logging.getLogger(__name__)

FIRE_TASK = "dispatcher.fire_schedules"
PURGE_TASK = "dispatcher.purge_retention"
PROBE_TASK = "dispatcher.probe_circuits"

#: Seconds one purge run may go on starting new batches; the next run continues.
PURGE_TIME_BUDGET = 300.0

_TERMINAL = list(TERMINAL_DELIVERY_STATUSES)


@app.task(name=FIRE_TASK, ignore_result=True)
def fire_schedules() -> dict[str, int]:
    """Beat: trigger every schedule whose time has come."""
    return asdict(fire_due(get_settings()))


# --- retention ----------------------------------------------------------------------------------


@dataclass
class PurgeReport:
    attempts: int = 0
    deliveries: int = 0
    notifications: int = 0
    #: Throttle counters whose window had ended.
    throttle_windows: int = 0
    #: Outbound webhook events posted or given up (with their attempts).
    webhook_events: int = 0
    #: False when the time budget ran out with rows left for the next run.
    complete: bool = True


def purge(
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
    time_budget: float = PURGE_TIME_BUDGET,
) -> PurgeReport:
    """Delete delivery records older than ``retention_days``, one bounded batch per transaction.

    Removed: attempts of finished deliveries, notifications that finished (every delivery
    sent, failed or skipped) with their deliveries and attempts, outbound webhook events
    posted or given up with their attempts, and throttle counters whose window has ended
    (whatever the retention age). Kept: anything of a delivery or an event still to be sent,
    and a digest's collected events while the digest is unsent.
    """
    settings = settings or get_settings()
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.retention_days)
    size = settings.retention_batch_size
    deadline = time.monotonic() + time_budget
    report = PurgeReport()
    # Each kind of row in bounded batches, until fewer than a batch are left (report field, batch).
    batches: tuple[tuple[str, Callable[[], int]], ...] = (
        ("throttle_windows", lambda: _prune_throttle_windows(now, size)),
        ("attempts", lambda: _purge_attempts(cutoff, size)),
        ("webhook_events", lambda: _purge_webhook_events(cutoff, size)),
    )
    for count, purge_batch in batches:
        while True:
            removed = purge_batch()
            setattr(report, count, getattr(report, count) + removed)
            if removed < size:
                break
            if time.monotonic() > deadline:
                report.complete = False
                return report
    while True:
        notifications, deliveries, attempts = _purge_notifications(cutoff, size)
        report.notifications += notifications
        report.deliveries += deliveries
        report.attempts += attempts
        if notifications < size:
            return report
        if time.monotonic() > deadline:
            report.complete = False
            return report


def _prune_throttle_windows(now: datetime, size: int) -> int:
    with database().transaction() as session:
        return prune_expired_windows(session, now, size)


def _purge_attempts(cutoff: datetime, size: int) -> int:
    with database().transaction() as session:
        ids = session.scalars(
            select(DeliveryAttempt.id)
            .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
            .where(DeliveryAttempt.created_at < cutoff, Delivery.status.in_(_TERMINAL))
            .limit(size)
            .with_for_update(of=DeliveryAttempt, skip_locked=True)
        ).all()
        if ids:
            session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.id.in_(ids)))
        return len(ids)


def _purge_webhook_events(cutoff: datetime, size: int) -> int:
    with database().transaction() as session:
        ids = session.scalars(
            select(WebhookEvent.id)
            .where(
                WebhookEvent.updated_at < cutoff,
                WebhookEvent.status.in_(list(TERMINAL_WEBHOOK_EVENT_STATUSES)),
            )
            .limit(size)
            .with_for_update(skip_locked=True)
        ).all()
        if ids:
            session.execute(
                delete(WebhookEventAttempt).where(WebhookEventAttempt.webhook_event_id.in_(ids))
            )
            session.execute(delete(WebhookEvent).where(WebhookEvent.id.in_(ids)))
        return len(ids)


def _purge_notifications(cutoff: datetime, size: int) -> tuple[int, int, int]:
    leader = aliased(Notification)
    open_delivery = exists().where(
        Delivery.notification_id == Notification.id, Delivery.status.notin_(_TERMINAL)
    )
    # An event collected into a digest is read when the digest is sent.
    open_leader = exists().where(
        leader.id == Notification.digest_leader_id,
        exists().where(Delivery.notification_id == leader.id, Delivery.status.notin_(_TERMINAL)),
    )
    with database().transaction() as session:
        ids = session.scalars(
            select(Notification.id)
            .where(Notification.updated_at < cutoff, ~open_delivery, ~open_leader)
            .limit(size)
            .with_for_update(of=Notification, skip_locked=True)
        ).all()
        if not ids:
            return 0, 0, 0
        delivery_ids = select(Delivery.id).where(Delivery.notification_id.in_(ids))
        attempts = cast(
            CursorResult[Any],
            session.execute(
                delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(delivery_ids))
            ),
        )
        deliveries = cast(
            CursorResult[Any],
            session.execute(delete(Delivery).where(Delivery.notification_id.in_(ids))),
        )
        session.execute(delete(Notification).where(Notification.id.in_(ids)))
        return len(ids), deliveries.rowcount, attempts.rowcount


@app.task(name=PURGE_TASK, ignore_result=True)
def purge_retention() -> dict[str, Any]:
    """Beat: delete delivery records older than the retention age."""
    report = purge(get_settings())
    if not report.complete:
        logger.warning("retention: time budget spent; the next run continues")
    return asdict(report)


# --- circuit probe ------------------------------------------------------------------------------


@app.task(name=PROBE_TASK, ignore_result=True)
def probe_circuits() -> dict[str, Any]:
    """Beat: close the circuits of integrations that answer their provider's check again, and
    count the integrations whose credentials this worker's keys cannot open (a metric)."""
    report = asdict(probe(get_settings()))
    keys = check_stored_credentials(database(), limit=None)
    record_undecryptable(keys.undecryptable)
    report["undecryptable"] = keys.undecryptable
    return report

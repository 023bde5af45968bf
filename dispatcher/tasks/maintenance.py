"""Beat jobs besides the outbox sweep: fire scheduled triggers, purge old delivery records,
probe integrations whose circuit has cooled down."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import CursorResult, delete, exists, select, update
from sqlalchemy.orm import aliased

from dispatcher.celery_app import app
from dispatcher.config import Settings, get_settings
from dispatcher.notifications.scheduling import fire_due
from dispatcher.observability.redaction import default_redactor
from dispatcher.runtime.http import SendingRuntime
from dispatcher.runtime.resources import database
from dispatcher.sending.batch import circuit_store, sending_runtime
from dispatcher.sending.execute import GUARDED_SETTINGS
from dispatcher.sending.url_guard import UnsafeDestinationError, check_destination_async
from models import (
    TERMINAL_DELIVERY_STATUSES,
    Delivery,
    DeliveryAttempt,
    Integration,
    IntegrationStatus,
    KeyRingError,
    Notification,
)
from models.types import utcnow
from providers.base import secret_values
from providers.errors import ProviderError
from providers.registry import UnknownProviderError

logger = logging.getLogger(__name__)

FIRE_TASK = "dispatcher.fire_schedules"
PURGE_TASK = "dispatcher.purge_retention"
PROBE_TASK = "dispatcher.probe_circuits"

#: Seconds one purge run may go on starting new batches; the next run continues.
PURGE_TIME_BUDGET = 300.0
#: Integrations in error read per run; of those cooled down, how many are checked per run.
PROBE_SCAN_LIMIT = 10_000
PROBE_LIMIT = 200
#: Checks in flight at once.
PROBE_CONCURRENCY = 10
#: Seconds one provider check may take in all (its HTTP client has its own timeouts too).
PROBE_TIMEOUT = 30.0

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
    #: False when the time budget ran out with rows left for the next run.
    complete: bool = True


def purge(
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
    time_budget: float = PURGE_TIME_BUDGET,
) -> PurgeReport:
    """Delete delivery records older than ``retention_days``, one bounded batch per transaction.

    Removed: attempts of finished deliveries, and notifications that finished (every delivery
    sent, failed or skipped) with their deliveries and attempts. Kept: anything of a delivery
    still to be sent, and a digest's collected events while the digest is unsent.
    """
    settings = settings or get_settings()
    cutoff = (now or utcnow()) - timedelta(days=settings.retention_days)
    size = settings.retention_batch_size
    deadline = time.monotonic() + time_budget
    report = PurgeReport()
    while True:
        removed = _purge_attempts(cutoff, size)
        report.attempts += removed
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


@dataclass(frozen=True)
class _Probe:
    integration_id: uuid.UUID
    provider: str
    credentials: dict[str, Any] = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProbeReport:
    #: Integrations whose check answered well: circuit closed, status back to active.
    closed: list[str] = field(default_factory=list)
    #: Checked and still failing: left in error (the next send remains the half-open probe).
    failing: list[str] = field(default_factory=list)
    #: Cooled down but their provider has no harmless check: the next send decides.
    unchecked: list[str] = field(default_factory=list)
    #: Circuit still open: not probed yet.
    waiting: int = 0


def probe(settings: Settings | None = None) -> ProbeReport:
    """Check integrations in ``error`` whose circuit has cooled down; close those that answer."""
    settings = settings or get_settings()
    report = ProbeReport()
    with database().session() as session:
        ids = session.scalars(
            select(Integration.id)
            .where(
                Integration.status == IntegrationStatus.ERROR,
                Integration.environment == settings.environment,
            )
            .limit(PROBE_SCAN_LIMIT)
        ).all()
    store = circuit_store()
    still_open = store.open_many([str(item) for item in ids])
    report.waiting = len(still_open)
    cooled = [item for item in ids if str(item) not in still_open]
    if len(cooled) > PROBE_LIMIT:
        # A random share each run: integrations that keep failing cannot starve the others.
        cooled = random.sample(cooled, PROBE_LIMIT)
    probes = [loaded for item in cooled if (loaded := _load(item, report)) is not None]
    if not probes:
        return report
    runtime = sending_runtime()
    answers = runtime.run(_check_all(runtime, probes, tuple(settings.url_allowlist)))
    now = utcnow()
    for item, answer in zip(probes, answers, strict=True):
        key = str(item.integration_id)
        if answer is None:
            report.unchecked.append(key)
        elif not answer:
            report.failing.append(key)
        else:
            store.record_success(key)
            with database().transaction() as session:
                session.execute(
                    update(Integration)
                    .where(
                        Integration.id == item.integration_id,
                        Integration.status == IntegrationStatus.ERROR,
                    )
                    .values(status=IntegrationStatus.ACTIVE, updated_at=now)
                )
            logger.info("integration %s: probe answered well, circuit closed", key)
            report.closed.append(key)
    return report


def _load(integration_id: uuid.UUID, report: ProbeReport) -> _Probe | None:
    try:
        with database().session() as session:
            row = session.execute(
                select(Integration.provider, Integration.credentials, Integration.settings).where(
                    Integration.id == integration_id
                )
            ).one()
    except KeyRingError:
        logger.warning(
            "integration %s: credentials cannot be decrypted; not probed", integration_id
        )
        report.failing.append(str(integration_id))
        return None
    return _Probe(integration_id, row.provider, row.credentials, row.settings)


async def _check_all(
    runtime: SendingRuntime, probes: list[_Probe], allow: tuple[str, ...]
) -> list[bool | None]:
    limit = asyncio.Semaphore(PROBE_CONCURRENCY)

    async def bounded(item: _Probe) -> bool | None:
        async with limit:
            return await _check(runtime, item, allow)

    with default_redactor.scope():
        return list(await asyncio.gather(*(bounded(item) for item in probes)))


async def _check(runtime: SendingRuntime, item: _Probe, allow: tuple[str, ...]) -> bool | None:
    """True: the provider vouched for the integration; False: it did not; None: no check."""
    try:
        provider = runtime.provider(item.provider)
        credentials = provider.parse_credentials(item.credentials)
        default_redactor.add(*secret_values(credentials))
        settings = provider.parse_settings(item.settings)
        # Tenant-supplied URLs: the probe must not reach what a send may not.
        for key in GUARDED_SETTINGS:
            url = item.settings.get(key)
            if isinstance(url, str) and url:
                await check_destination_async(url, allow=allow)
        client = runtime.client(http2=type(provider).requires_http2)
        answer = await asyncio.wait_for(
            provider.check(credentials, settings, client), PROBE_TIMEOUT
        )
    except (
        UnknownProviderError,
        ValidationError,
        UnsafeDestinationError,
        ProviderError,
        TimeoutError,
    ) as exc:
        logger.info("integration %s: probe failed (%s)", item.integration_id, type(exc).__name__)
        return False
    except Exception:
        logger.exception("integration %s: the provider's check raised", item.integration_id)
        return False
    if answer is None:
        return None
    if not answer.ok:
        logger.info("integration %s: probe answered not ok", item.integration_id)
    return answer.ok


@app.task(name=PROBE_TASK, ignore_result=True)
def probe_circuits() -> dict[str, Any]:
    """Beat: close the circuits of integrations that answer their provider's check again."""
    return asdict(probe(get_settings()))

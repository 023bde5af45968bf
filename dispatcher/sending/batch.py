"""One delivery batch, start to finish: claim, plan, send, write back.

Orchestration only: the rows are read and written by :mod:`~dispatcher.sending.store`, planned by
:mod:`~dispatcher.sending.plan` and sent by :mod:`~dispatcher.sending.execute`. The returned
:class:`~dispatcher.sending.store.BatchReport` carries what the task needs to schedule retries and
what the metrics read (on the ``batch_finished`` signal), so nothing here records metrics.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from functools import lru_cache

import redis

from dispatcher.config import Settings, get_settings
from dispatcher.runtime.http import SendingRuntime
from dispatcher.runtime.resources import database
from dispatcher.sending.circuit import (
    AdvisoryCircuitStore,
    CircuitStore,
    MemoryCircuitStore,
    RedisCircuitStore,
)
from dispatcher.sending.execute import BatchSender, CircuitView, Outcome, Policy
from dispatcher.sending.plan import build_jobs, load
from dispatcher.sending.rate_limit import Pacer, RateStore, RedisRateStore, local_rate_store
from dispatcher.sending.rendering import TemplateRenderer
from dispatcher.sending.store import (
    BatchReport,
    claim,
    due_times,
    log_unknown,
    write_back_while_leased,
)
from models import ChannelType, DeliveryStatus
from models.types import utcnow

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def sending_runtime() -> SendingRuntime:
    settings = get_settings()
    return SendingRuntime(
        timeout=settings.send_timeout,
        max_connections=max(100, settings.send_concurrency_per_integration * 4),
        url_allowlist=settings.url_allowlist,
    )


@lru_cache(maxsize=1)
def renderer() -> TemplateRenderer:
    settings = get_settings()
    return TemplateRenderer(
        timeout=settings.template_render_timeout, max_length=settings.max_rendered_length
    )


@lru_cache(maxsize=1)
def circuit_store() -> CircuitStore:
    """The process's circuit store: shared through Redis when the broker is Redis (advisory:
    an unreachable Redis is logged, not raised)."""
    settings = get_settings()
    url = settings.resolved_broker_url
    if url.startswith(("redis://", "rediss://")):
        return AdvisoryCircuitStore(
            RedisCircuitStore(
                redis.Redis.from_url(url, socket_timeout=5),
                threshold=settings.circuit_failure_threshold,
                cooldown=settings.circuit_cooldown,
            )
        )
    return MemoryCircuitStore(
        threshold=settings.circuit_failure_threshold, cooldown=settings.circuit_cooldown
    )


@lru_cache(maxsize=1)
def rate_store() -> RateStore:
    url = get_settings().resolved_broker_url
    if url.startswith(("redis://", "rediss://")):
        return RedisRateStore(redis.Redis.from_url(url, socket_timeout=5))
    return local_rate_store()


#: Seconds of the send lease kept free of rate-limit waits, for the requests and the write-back.
LEASE_MARGIN = 5.0


def policy(settings: Settings) -> Policy:
    return Policy(
        max_attempts_per_integration=settings.max_attempts_per_integration,
        max_attempts_per_delivery=settings.max_attempts_per_delivery,
        retry_base_delay=settings.retry_base_delay,
        retry_max_delay=settings.retry_max_delay,
        retry_after_cap=settings.retry_after_cap,
        circuit_cooldown=settings.circuit_cooldown,
        concurrency_per_integration=settings.send_concurrency_per_integration,
        url_allowlist=tuple(settings.url_allowlist),
        max_rate_wait=min(
            settings.rate_limit_max_wait,
            max(0.0, settings.send_lease - settings.send_timeout - LEASE_MARGIN),
        ),
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
        log_unknown(ids, claimed)
    if not claimed:
        return report
    with db.session() as session:
        loaded = load(session, claimed, settings.environment)
        jobs = build_jobs(loaded, renderer())
    to_send = [job for job in jobs if job.decided is None and job.channel is not ChannelType.IN_APP]
    circuit = _circuit_view(
        circuit_store(), {c.integration_id for j in to_send for c in j.candidates}
    )
    runtime = sending_runtime()
    outcomes: dict[uuid.UUID, Outcome] = {}
    if to_send:
        rules = policy(settings)
        sender = BatchSender(
            runtime, rules, circuit, Pacer(rate_store(), max_wait=rules.max_rate_wait)
        )
        outcomes = runtime.run(sender.send_all(to_send))
    for job in jobs:
        if job.decided is not None:
            outcomes[job.delivery_id] = Outcome(status=job.decided[0], reason=job.decided[1])
        elif job.channel is ChannelType.IN_APP:
            outcomes[job.delivery_id] = Outcome(status=DeliveryStatus.SENT, provider="inbox")
    lease_end = now + timedelta(seconds=settings.send_lease)
    report = write_back_while_leased(jobs, outcomes, circuit, report.claimed, settings, lease_end)
    report.jobs, report.outcomes, report.claimed_at, report.due = jobs, outcomes, now, due
    return report


def _circuit_view(store: CircuitStore, integration_ids: set[uuid.UUID]) -> CircuitView:
    open_ids = {uuid.UUID(item) for item in store.open_many([str(i) for i in integration_ids])}
    return CircuitView(
        open_ids,
        lambda integration_id: store.record_failure(str(integration_id)),
        lambda integration_id: store.record_success(str(integration_id)),
        lambda integration_id, seconds: store.hold(str(integration_id), seconds),
    )


def _parse_ids(raw_ids: list[str]) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for raw in raw_ids:
        try:
            ids.append(uuid.UUID(str(raw)))
        except ValueError:
            logger.warning("deliver: ignoring a delivery id that is not a UUID")
    return ids

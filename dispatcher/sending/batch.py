"""One delivery batch, start to finish: claim, plan, send, write back.

Orchestration only: the rows are read and written by :mod:`~dispatcher.sending.store`, planned by
:mod:`~dispatcher.sending.plan` and sent by :mod:`~dispatcher.sending.execute`. The returned
:class:`~dispatcher.sending.store.BatchReport` carries what the task needs to schedule retries and
what the metrics read (on the ``batch_finished`` signal), so nothing here records metrics.
"""

from __future__ import annotations

import logging
import time
import uuid
from functools import lru_cache
from types import MappingProxyType

import redis

from dispatcher.config import Settings, get_settings
from dispatcher.runtime.http import SendingRuntime
from dispatcher.runtime.resources import database
from dispatcher.sending.circuit import (
    AdvisoryCircuitStore,
    CircuitStore,
    CircuitView,
    MemoryCircuitStore,
    RedisCircuitStore,
)
from dispatcher.sending.execute import BatchSender, Outcome, Policy
from dispatcher.sending.lease import BatchLease
from dispatcher.sending.plan import Job, build_jobs, load
from dispatcher.sending.rate_limit import Pacer, RateStore, RedisRateStore, local_rate_store
from dispatcher.sending.rendering import TemplateRenderer
from dispatcher.sending.store import BatchReport, claim, due_times, log_unknown
from models import ChannelType, DeliveryStatus
from models.ids import new_id
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
    """The process's circuit store: shared through Redis when there is one (advisory: an
    unreachable Redis is logged, not raised)."""
    settings = get_settings()
    url = settings.resolved_redis_url
    if url is not None:
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
    url = get_settings().resolved_redis_url
    if url is not None:
        return RedisRateStore(redis.Redis.from_url(url, socket_timeout=5))
    return local_rate_store()


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
        # A turn after the send deadline could not be taken anyway.
        max_rate_wait=min(settings.rate_limit_max_wait, settings.batch_send_deadline),
        request_timeout=settings.send_timeout,
        on_ambiguous_by_channel=MappingProxyType(dict(settings.on_ambiguous_by_channel)),
    )


def process_batch(raw_ids: list[str], settings: Settings | None = None) -> BatchReport:
    settings = settings or get_settings()
    ids = _parse_ids(raw_ids)
    now = utcnow()
    token = new_id()
    db = database()
    with db.transaction() as session:
        due = due_times(session, ids, settings.enqueue_lease)
        claimed = claim(session, ids, settings, now, token)
    if len(claimed) < len(ids):
        log_unknown(ids, claimed)
    if not claimed:
        return BatchReport()
    with BatchLease(token, claimed, settings, now) as lease:
        jobs, outcomes, circuit = _work(claimed, settings, lease)
    report = lease.finish(circuit)
    report.jobs, report.outcomes, report.claimed_at, report.due = jobs, outcomes, now, due
    return report


def _work(
    claimed: list[uuid.UUID], settings: Settings, lease: BatchLease
) -> tuple[list[Job], dict[uuid.UUID, Outcome], CircuitView]:
    """Render, then send, within the batch's deadlines; each outcome goes to the lease as soon
    as it is known."""
    render_deadline = time.monotonic() + settings.batch_render_deadline
    with database().session() as session:
        loaded = load(session, claimed, settings.environment)
    jobs = build_jobs(loaded, renderer(), deadline=render_deadline)
    outcomes: dict[uuid.UUID, Outcome] = {}
    for job in jobs:
        if job.decided is not None:
            outcomes[job.delivery_id] = Outcome(
                status=job.decided[0], reason=job.decided[1], delay=job.decided_delay
            )
        elif job.channel is ChannelType.IN_APP:
            outcomes[job.delivery_id] = Outcome(status=DeliveryStatus.SENT, provider="inbox")
        else:
            continue
        lease.finished(job, outcomes[job.delivery_id])
    to_send = [job for job in jobs if job.delivery_id not in outcomes]
    circuit = CircuitView(
        circuit_store(), {c.integration_id for j in to_send for c in j.candidates}
    )
    if to_send:
        lease.recheck()
        rules = policy(settings)
        sender = BatchSender(
            sending_runtime(), rules, circuit, Pacer(rate_store(), max_wait=rules.max_rate_wait),
            held=lease.holds, send_deadline=time.monotonic() + settings.batch_send_deadline,
        )  # fmt: skip
        outcomes |= sending_runtime().run(sender.send_all(to_send, lease.finished))
    return jobs, outcomes, circuit


def _parse_ids(raw_ids: list[str]) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for raw in raw_ids:
        try:
            ids.append(uuid.UUID(str(raw)))
        except ValueError:
            logger.warning("deliver: ignoring a delivery id that is not a UUID")
    return ids

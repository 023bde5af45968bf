"""Worker-side Prometheus metrics of the sending path, and their exposition.

Four metrics recorded once per batch by :func:`record_batch`:

- ``dispatcher_delivery_attempts_total{channel, provider, outcome}``: provider calls;
- ``dispatcher_send_latency_seconds{provider}``: duration of each provider call, whatever its
  outcome (a timeout counts as the time it took);
- ``dispatcher_queue_lag_seconds{priority}``: from a delivery being due to a worker claiming it;
- ``dispatcher_deliveries_finished_total{channel, status}``: deliveries that reached ``sent``,
  ``failed`` or ``skipped``;

one recorded by the lifecycle task for each batch of provider callbacks it applied:

- ``dispatcher_callback_events_total{provider, kind}``: delivery events applied (duplicates and
  events for unknown messages are not counted);

and one more, set by the circuit probe (a beat job) after counting them:

- ``dispatcher_undecryptable_integrations``: integrations whose stored credentials the worker's
  key ring cannot open (their deliveries wait; a wrong or incomplete key ring shows here).

Labels are bounded sets (channels, provider names, outcomes); no organisation or delivery id.

Exposition uses ``prometheus_client``'s multiprocess mode. Celery's prefork pool sends from child
processes that are forked, replaced and killed, so a per-process HTTP server would need a port per
child and would lose a child's counts with it. Instead every process writes its samples to files
in ``PROMETHEUS_MULTIPROC_DIR``, and the worker's main process serves the sum on
``DISPATCHER_METRICS_PORT`` (address ``DISPATCHER_METRICS_ADDRESS``, default ``127.0.0.1``).
``prometheus_client`` chooses the mode when it is imported, so ``PROMETHEUS_MULTIPROC_DIR`` must
be in the worker's environment when it starts; each worker instance needs its own directory, which
:func:`prepare_worker_metrics` empties at start-up.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import Counter as Tally
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dispatcher.errors import ConfigurationError
from models import TERMINAL_DELIVERY_STATUSES

if TYPE_CHECKING:
    from dispatcher.sending.execute import Outcome
    from dispatcher.sending.plan import Job

logger = logging.getLogger(__name__)

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
FINAL_STATUSES = TERMINAL_DELIVERY_STATUSES
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


class MetricsSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DISPATCHER_METRICS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    #: Port of the worker's metrics endpoint; unset, nothing is served.
    port: int | None = Field(default=None, ge=1, le=65535)
    address: str = "127.0.0.1"


class WorkerMetrics:
    """The metrics, registered in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.attempts = Counter(
            "dispatcher_delivery_attempts",
            "Provider calls made for deliveries, by channel, provider and attempt outcome.",
            ["channel", "provider", "outcome"],
            registry=registry,
        )
        self.send_latency = Histogram(
            "dispatcher_send_latency_seconds",
            "Duration of one provider call, whatever its outcome.",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_lag = Histogram(
            "dispatcher_queue_lag_seconds",
            "Seconds from a delivery being due to a worker claiming it.",
            ["priority"],
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.finished = Counter(
            "dispatcher_deliveries_finished",
            "Deliveries that reached a final status, by channel and status.",
            ["channel", "status"],
            registry=registry,
        )
        self.callback_events = Counter(
            "dispatcher_callback_events",
            "Provider callback events applied to deliveries, by provider and kind.",
            ["provider", "kind"],
            registry=registry,
        )
        self.undecryptable = Gauge(
            "dispatcher_undecryptable_integrations",
            "Integrations whose stored credentials the worker's encryption keys cannot open.",
            registry=registry,
            # Whichever process counted last is right: the count is of the database, not of it.
            multiprocess_mode="mostrecent",
        )

    def record(
        self,
        jobs: Sequence[Job],
        outcomes: Mapping[uuid.UUID, Outcome],
        *,
        claimed_at: datetime | None = None,
        due: Mapping[uuid.UUID, datetime] | None = None,
    ) -> None:
        attempts: Tally[tuple[str, str, str]] = Tally()
        finished: Tally[tuple[str, str]] = Tally()
        for job in jobs:
            # A fetch step has no channel: its requests and outcomes are labelled "fetch".
            channel = "fetch" if job.fetch_position is not None else job.channel.value
            if due is not None and claimed_at is not None and job.delivery_id in due:
                lag = (claimed_at - due[job.delivery_id]).total_seconds()
                priority = "critical" if job.critical else "normal"
                self.queue_lag.labels(priority).observe(max(lag, 0.0))
            outcome = outcomes.get(job.delivery_id)
            if outcome is None:
                continue
            for attempt in outcome.attempts:
                attempts[(channel, attempt.provider, attempt.outcome.value)] += 1
                self.send_latency.labels(attempt.provider).observe(attempt.latency_ms / 1000)
            if outcome.status in FINAL_STATUSES:
                finished[(channel, outcome.status)] += 1
        for (channel, provider, result), count in attempts.items():
            self.attempts.labels(channel, provider, result).inc(count)
        for (channel, status), count in finished.items():
            self.finished.labels(channel, status).inc(count)


registry = CollectorRegistry()
worker_metrics = WorkerMetrics(registry)


def record_batch(
    jobs: Sequence[Job],
    outcomes: Mapping[uuid.UUID, Outcome],
    *,
    claimed_at: datetime | None = None,
    due: Mapping[uuid.UUID, datetime] | None = None,
) -> None:
    """Record a finished batch: its attempts, latencies and final statuses, and, given the claim
    time and :func:`due_times`, its queue lag. Never raises: metrics must not fail a batch."""
    try:
        worker_metrics.record(jobs, outcomes, claimed_at=claimed_at, due=due)
    except Exception:
        logger.warning("metrics: could not record a batch", exc_info=True)


def record_callback_events(counts: Mapping[tuple[str, str], int]) -> None:
    """Count applied callback events by (provider, kind). Never raises."""
    try:
        for (provider, kind), count in counts.items():
            worker_metrics.callback_events.labels(provider, kind).inc(count)
    except Exception:
        logger.warning("metrics: could not record callback events", exc_info=True)


def record_undecryptable(count: int) -> None:
    """Set the undecryptable-integrations gauge. Never raises, like :func:`record_batch`."""
    try:
        worker_metrics.undecryptable.set(count)
    except Exception:
        logger.warning("metrics: could not record the undecryptable count", exc_info=True)


def multiprocess_directory() -> Path:
    """The directory of multiprocess mode; a clear error if the mode is off."""
    directory = os.environ.get(MULTIPROC_VARIABLE)
    if not directory or values.ValueClass is values.MutexValue:
        raise ConfigurationError(
            f"DISPATCHER_METRICS_PORT is set, so {MULTIPROC_VARIABLE} must be too: set it in the "
            "worker's environment before it starts, to a directory of its own (the pool's "
            "processes write their samples there and the worker serves their sum)"
        )
    return Path(directory)


def prepare_worker_metrics(settings: MetricsSettings | None = None) -> None:
    """At worker start-up, before the pool forks: check the mode and empty the directory, whose
    files from an earlier run would otherwise pile up (counts stay monotonic either way)."""
    settings = settings or MetricsSettings()
    if settings.port is None:
        return
    directory = multiprocess_directory()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)


@dataclass
class MetricsServer:
    server: WSGIServer
    address: str
    port: int

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_worker_metrics(settings: MetricsSettings | None = None) -> MetricsServer | None:
    """Serve the sum over the worker's processes on ``DISPATCHER_METRICS_PORT``, if set."""
    settings = settings or MetricsSettings()
    if settings.port is None:
        return None
    served = CollectorRegistry()
    MultiProcessCollector(served, path=str(multiprocess_directory()))  # type: ignore[no-untyped-call]
    server, _ = start_http_server(settings.port, settings.address, registry=served)
    logger.info("metrics: serving on %s:%d", settings.address, settings.port)
    return MetricsServer(server, settings.address, settings.port)

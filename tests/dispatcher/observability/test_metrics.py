"""Worker metrics: what record_batch counts from real Job/Outcome objects, the exposition format,
due times read before a real claim, and multiprocess mode summing forked processes over HTTP."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from dispatcher import trigger
from dispatcher.config import get_settings, reset_settings
from dispatcher.errors import ConfigurationError
from dispatcher.observability import metrics
from dispatcher.observability.metrics import MetricsSettings, WorkerMetrics, record_batch
from dispatcher.runtime.resources import database
from dispatcher.sending.execute import Attempt, Outcome
from dispatcher.sending.plan import Job
from dispatcher.sending.store import claim, due_at, due_times
from models import AttemptOutcome, ChannelType, Delivery, DeliveryStatus
from tests.conftest import free_port
from tests.dispatcher.notify_support import EMAIL_STEP, subscriber, workflow

ROOT = Path(__file__).resolve().parents[3]
ORGANISATION = uuid.uuid4()


def job(channel: ChannelType = ChannelType.EMAIL, *, critical: bool = False) -> Job:
    return Job(
        delivery_id=uuid.uuid4(),
        organisation_id=ORGANISATION,
        notification_id=uuid.uuid4(),
        channel=channel,
        attempts=0,
        critical=critical,
    )


def attempt(for_job: Job, provider: str, outcome: AttemptOutcome, latency_ms: float) -> Attempt:
    status = {AttemptOutcome.SENT: 200, AttemptOutcome.RECIPIENT_ERROR: 400}.get(outcome)
    return Attempt(
        for_job.delivery_id, ORGANISATION, uuid.uuid4(), provider, outcome, status, latency_ms
    )


def sample_batch() -> tuple[list[Job], dict[uuid.UUID, Outcome]]:
    """Fallback then sent; a retry; skipped without sending; in-app; an invalid recipient."""
    fell_back, retried, skipped, in_app, refused = (
        job(),
        job(ChannelType.SMS),
        job(),
        job(ChannelType.IN_APP),
        job(),
    )
    outcomes = {
        fell_back.delivery_id: Outcome(
            status=DeliveryStatus.SENT,
            provider="fake_http",
            attempts=[
                attempt(fell_back, "sendgrid", AttemptOutcome.INTEGRATION_ERROR, 40.0),
                attempt(fell_back, "fake_http", AttemptOutcome.SENT, 120.0),
            ],
        ),
        retried.delivery_id: Outcome(
            status=DeliveryStatus.RETRYING,
            delay=1.0,
            attempts=[attempt(retried, "twilio", AttemptOutcome.RETRYABLE, 2000.0)],
        ),
        skipped.delivery_id: Outcome(status=DeliveryStatus.SKIPPED, reason="opted out"),
        in_app.delivery_id: Outcome(status=DeliveryStatus.SENT, provider="inbox"),
        refused.delivery_id: Outcome(
            status=DeliveryStatus.FAILED,
            attempts=[attempt(refused, "fake_http", AttemptOutcome.RECIPIENT_ERROR, 60.0)],
        ),
    }
    return [fell_back, retried, skipped, in_app, refused], outcomes


EXPECTED_ATTEMPTS = {
    ("email", "sendgrid", "integration_error"): 1.0,
    ("email", "fake_http", "sent"): 1.0,
    ("sms", "twilio", "retryable"): 1.0,
    ("email", "fake_http", "recipient_error"): 1.0,
}
EXPECTED_FINISHED = {
    ("email", "sent"): 1.0,
    ("email", "skipped"): 1.0,
    ("in_app", "sent"): 1.0,
    ("email", "failed"): 1.0,
}


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of one sample name in an exposition, keyed by their sorted labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def attempts_in(text: str) -> dict[tuple[str, ...], float]:
    found = samples(text, "dispatcher_delivery_attempts_total")
    return {
        tuple(dict(key)[n] for n in ("channel", "provider", "outcome")): v
        for key, v in found.items()
    }


def finished_in(text: str) -> dict[tuple[str, ...], float]:
    found = samples(text, "dispatcher_deliveries_finished_total")
    return {tuple(dict(key)[n] for n in ("channel", "status")): v for key, v in found.items()}


@pytest.fixture
def fresh() -> WorkerMetrics:
    return WorkerMetrics(CollectorRegistry())


def test_attempts_and_final_statuses_are_counted_by_their_labels(fresh: WorkerMetrics) -> None:
    jobs, outcomes = sample_batch()
    fresh.record(jobs, outcomes)
    text = generate_latest(fresh.registry).decode()

    assert attempts_in(text) == EXPECTED_ATTEMPTS
    # The retrying SMS delivery has not finished.
    assert finished_in(text) == EXPECTED_FINISHED

    fresh.record(jobs, outcomes)
    text = generate_latest(fresh.registry).decode()
    assert attempts_in(text) == {key: 2 * value for key, value in EXPECTED_ATTEMPTS.items()}


def test_send_latency_is_observed_in_seconds_per_provider(fresh: WorkerMetrics) -> None:
    jobs, outcomes = sample_batch()
    fresh.record(jobs, outcomes)
    value = fresh.registry.get_sample_value

    assert value("dispatcher_send_latency_seconds_count", {"provider": "fake_http"}) == 2
    assert value("dispatcher_send_latency_seconds_sum", {"provider": "fake_http"}) == pytest.approx(
        0.18
    )
    # 120 ms and 60 ms: both within 0.25 s, only the 60 ms one within 0.1 s.
    assert (
        value("dispatcher_send_latency_seconds_bucket", {"provider": "fake_http", "le": "0.1"}) == 1
    )
    assert (
        value("dispatcher_send_latency_seconds_bucket", {"provider": "fake_http", "le": "0.25"})
        == 2
    )
    assert value("dispatcher_send_latency_seconds_bucket", {"provider": "twilio", "le": "1.0"}) == 0
    assert value("dispatcher_send_latency_seconds_bucket", {"provider": "twilio", "le": "2.5"}) == 1
    # In-app deliveries and decisions without a send make no provider call.
    assert value("dispatcher_send_latency_seconds_count", {"provider": "inbox"}) is None


def test_queue_lag_runs_from_due_to_claim_by_priority(fresh: WorkerMetrics) -> None:
    claimed_at = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    late, on_time, early, unknown = job(critical=True), job(), job(), job()
    due = {
        late.delivery_id: claimed_at - timedelta(seconds=3),
        on_time.delivery_id: claimed_at - timedelta(seconds=0.2),
        early.delivery_id: claimed_at + timedelta(seconds=5),
    }
    fresh.record([late, on_time, early, unknown], {}, claimed_at=claimed_at, due=due)
    value = fresh.registry.get_sample_value

    assert value("dispatcher_queue_lag_seconds_count", {"priority": "critical"}) == 1
    assert value("dispatcher_queue_lag_seconds_sum", {"priority": "critical"}) == pytest.approx(3)
    assert value("dispatcher_queue_lag_seconds_bucket", {"priority": "critical", "le": "2.5"}) == 0
    # A delivery without a known due time is left out; one claimed early counts as no lag.
    assert value("dispatcher_queue_lag_seconds_count", {"priority": "normal"}) == 2
    assert value("dispatcher_queue_lag_seconds_sum", {"priority": "normal"}) == pytest.approx(0.2)
    assert value("dispatcher_queue_lag_seconds_bucket", {"priority": "normal", "le": "0.1"}) == 1


def test_without_a_claim_time_no_lag_is_observed(fresh: WorkerMetrics) -> None:
    one = job()
    fresh.record([one], {}, due={one.delivery_id: datetime.now(UTC)})
    assert (
        fresh.registry.get_sample_value(
            "dispatcher_queue_lag_seconds_count", {"priority": "normal"}
        )
        is None
    )


def test_the_exposition_names_types_and_help_of_the_metrics(fresh: WorkerMetrics) -> None:
    jobs, outcomes = sample_batch()
    now = datetime.now(UTC)
    fresh.record(jobs, outcomes, claimed_at=now, due={job.delivery_id: now for job in jobs})
    text = generate_latest(fresh.registry).decode()
    # Outside multiprocess mode prometheus_client adds a `<name>_created` gauge per family.
    families = {
        family.name: family
        for family in text_string_to_metric_families(text)
        if not family.name.endswith("_created")
    }

    assert {name: family.type for name, family in families.items()} == {
        "dispatcher_delivery_attempts": "counter",
        "dispatcher_send_latency_seconds": "histogram",
        "dispatcher_queue_lag_seconds": "histogram",
        "dispatcher_deliveries_finished": "counter",
        "dispatcher_callback_events": "counter",
        "dispatcher_undecryptable_integrations": "gauge",
    }
    assert all(family.documentation for family in families.values())
    assert "# TYPE dispatcher_delivery_attempts_total counter" in text
    assert "# TYPE dispatcher_send_latency_seconds histogram" in text
    assert (
        'dispatcher_delivery_attempts_total{channel="email",outcome="sent",provider="fake_http"} 1.0'
        in text
    )
    buckets = samples(text, "dispatcher_queue_lag_seconds_bucket")
    assert {dict(key)["le"] for key in buckets} >= {"0.1", "3600.0", "+Inf"}
    # No organisation, delivery or notification ids in any label.
    labels = {name for family in families.values() for s in family.samples for name in s.labels}
    assert labels == {"channel", "provider", "outcome", "status", "priority", "le"}


def test_record_batch_counts_on_the_worker_registry() -> None:
    before = generate_latest(metrics.registry).decode()
    jobs, outcomes = sample_batch()
    record_batch(jobs, outcomes)
    after = generate_latest(metrics.registry).decode()

    grown = {
        key: value - attempts_in(before).get(key, 0.0) for key, value in attempts_in(after).items()
    }
    assert {key: value for key, value in grown.items() if value} == EXPECTED_ATTEMPTS


def test_applied_callback_events_are_counted_by_provider_and_kind() -> None:
    value = metrics.registry.get_sample_value
    labels = {"provider": "fake_http", "kind": "delivered"}
    before = value("dispatcher_callback_events_total", labels) or 0.0
    metrics.record_callback_events({("fake_http", "delivered"): 3, ("fake_http", "opened"): 1})
    assert value("dispatcher_callback_events_total", labels) == before + 3


def test_record_batch_never_fails_a_batch(caplog: pytest.LogCaptureFixture) -> None:
    broken = job()
    broken.channel = "email"  # type: ignore[assignment] - not a ChannelType: .value fails
    with caplog.at_level(logging.WARNING, logger="dispatcher.observability.metrics"):
        record_batch([broken], {broken.delivery_id: Outcome(status=DeliveryStatus.SENT)})
    assert "could not record a batch" in caplog.text


CREATED = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "next_attempt_at", "expected"),
    [
        # Written and handed to the broker at once: reserved for enqueue_lease (120 s here).
        (DeliveryStatus.QUEUED, CREATED + timedelta(seconds=120), CREATED),
        # A retry due at 12:05 with a countdown message, reserved from then.
        (
            DeliveryStatus.RETRYING,
            CREATED + timedelta(minutes=5, seconds=120),
            CREATED + timedelta(minutes=5),
        ),
        # A blast written unreserved (next_attempt_at = created_at): due at creation.
        (DeliveryStatus.QUEUED, CREATED, CREATED),
        # A send whose worker died: due again when its send lease ran out.
        (DeliveryStatus.SENDING, CREATED + timedelta(minutes=2), CREATED + timedelta(minutes=2)),
        (DeliveryStatus.QUEUED, None, CREATED),
    ],
)
def test_due_at(
    status: DeliveryStatus, next_attempt_at: datetime | None, expected: datetime
) -> None:
    assert due_at(status, next_attempt_at, CREATED, 120.0) == expected


@pytest.fixture
def unconsumed_delivery_queue(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[None]:
    """Delivery messages go to a queue no worker reads, so this test does the claiming."""
    import redis

    queue = f"metrics-unconsumed-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DISPATCHER_DELIVERY_QUEUE", queue)
    reset_settings()
    yield
    monkeypatch.undo()
    reset_settings()
    client = redis.Redis.from_url(redis_url)
    client.delete(queue)
    client.close()


@pytest.mark.usefixtures("unconsumed_delivery_queue")
def test_due_times_read_before_a_real_claim_measure_from_the_trigger(
    organisation_id: uuid.UUID,
) -> None:
    subscriber(organisation_id, "ada")
    workflow(organisation_id, "code", [EMAIL_STEP])
    receipt = trigger(organisation_id, "code", "ada", {"code": "1"})
    settings = get_settings()
    with database().session() as session:
        [(delivery_id, created_at)] = session.execute(
            select(Delivery.id, Delivery.created_at).where(
                Delivery.organisation_id == organisation_id
            )
        ).all()
    claimed_at = created_at + timedelta(seconds=2)
    try:
        with database().transaction() as session:
            due = due_times(session, [delivery_id], settings.enqueue_lease)
            assert claim(session, [delivery_id], settings, claimed_at) == [delivery_id]
        # The claim moved next_attempt_at to the send lease; read now, the due time is lost.
        with database().session() as session:
            after = due_times(session, [delivery_id], settings.enqueue_lease)
    finally:
        with database().transaction() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(status=DeliveryStatus.SKIPPED, next_attempt_at=None)
            )
    assert receipt.notification_ids
    assert due == {delivery_id: created_at}
    assert after[delivery_id] != created_at

    fresh = WorkerMetrics(CollectorRegistry())
    fresh.record([job_for(delivery_id)], {}, claimed_at=claimed_at, due=due)
    assert fresh.registry.get_sample_value(
        "dispatcher_queue_lag_seconds_sum", {"priority": "normal"}
    ) == pytest.approx(2)


def job_for(delivery_id: uuid.UUID) -> Job:
    made = job()
    made.delivery_id = delivery_id
    return made


# --- exposition from the worker -------------------------------------------------------------------


def test_without_a_port_nothing_is_prepared_or_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPATCHER_METRICS_PORT", raising=False)
    monkeypatch.delenv(metrics.MULTIPROC_VARIABLE, raising=False)
    metrics.prepare_worker_metrics(MetricsSettings())
    assert metrics.serve_worker_metrics(MetricsSettings()) is None


def test_a_port_without_multiprocess_mode_stops_the_worker_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_VARIABLE, raising=False)
    with pytest.raises(ConfigurationError, match="PROMETHEUS_MULTIPROC_DIR must be too"):
        metrics.prepare_worker_metrics(MetricsSettings(port=9999))


# What a prefork worker does: the main process prepares, children fork and record, and the main
# process serves what they wrote, after they are gone.
PREFORK_WORKER = textwrap.dedent(
    """
    import os, sys
    from dispatcher.observability import metrics
    from tests.dispatcher.observability.test_metrics import sample_batch

    metrics.prepare_worker_metrics()
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            jobs, outcomes = sample_batch()
            metrics.record_batch(jobs, outcomes)
            os._exit(0)
        os.waitpid(pid, 0)
    server = metrics.serve_worker_metrics()
    print("serving", server.address, server.port, flush=True)
    sys.stdin.readline()
    server.stop()
    """
)


def test_multiprocess_mode_serves_the_sum_of_every_process(tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    stale = directory / "counter_1.db"
    stale.write_bytes(b"left by an earlier run")
    port = free_port()
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("DISPATCHER_METRICS")
    }
    environment.update(
        {metrics.MULTIPROC_VARIABLE: str(directory), "DISPATCHER_METRICS_PORT": str(port)}
    )
    process = subprocess.Popen(
        [sys.executable, "-c", PREFORK_WORKER],
        cwd=ROOT,
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.split() == ["serving", "127.0.0.1", str(port)], process.communicate()[1]
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    finally:
        process.communicate("stop\n", timeout=20)
    assert process.returncode == 0

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert not stale.exists()
    assert len(list(directory.glob("*.db"))) >= 2  # one file per process and metric type
    assert attempts_in(response.text) == {key: 2 * v for key, v in EXPECTED_ATTEMPTS.items()}
    assert finished_in(response.text) == {key: 2 * v for key, v in EXPECTED_FINISHED.items()}
    assert samples(response.text, "dispatcher_send_latency_seconds_count") == {
        (("provider", "fake_http"),): 4.0,
        (("provider", "sendgrid"),): 2.0,
        (("provider", "twilio"),): 2.0,
    }

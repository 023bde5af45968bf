"""A soak: hundreds of thousands of deliveries through the full path while 10% of provider
requests fail at random. Every delivery must end terminal and be accounted for, the worker's
memory must stay flat and its throughput must hold to the end.

``SOAK_DELIVERIES`` (default 200,000) sets the size; a smaller figure makes a quick local run.
Several organisations, many subscribers, and a feeder that triggers (``trigger_bulk``, several
events per call, some small enough to be enqueued at once, some left to the outbox pump) keeps a
backlog in front of the workers, so the rates measured are the workers' own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.chaos.accounting import count
from tests.chaos.scenario import Tenant, tenant, trigger_all
from tests.chaos.stack import (
    BackendClock,
    Stack,
    chaos_stack,
    cpu_seconds,
    machine_busy_seconds,
    rss_bytes,
)

DELIVERIES = int(os.environ.get("SOAK_DELIVERIES", "200000"))
ORGANISATIONS = 4
#: Each organisation's subscribers are notified this many times over the run.
ROUNDS = 5
FAIL_RATIO = 0.1
#: The feeder triggers the next call once fewer deliveries than this wait (triggered, not yet
#: terminal), so the workers never run dry before the end.
LOW_WATER = max(2_000, DELIVERIES // 8)
SOAK_SETTINGS = {
    "DISPATCHER_DELIVERY_BATCH_SIZE": "200",
    "DISPATCHER_SWEEP_INTERVAL": "2",
}
#: Seconds between vacuums standing in for autovacuum when the server has it off.
VACUUM_INTERVAL = 30.0
#: Bands of progress (share of deliveries terminal) whose rates are compared.
# Each band a fifth of the run: on a shared host a 30-second window can be a third slower for
# reasons outside the run, which two windows of 10% compared too noisily.
WARM, START_BAND, END_BAND = 0.1, (0.1, 0.3), (0.7, 0.9)
MB = 1024 * 1024

pytestmark = [
    pytest.mark.slow,
    pytest.mark.worker,
    pytest.mark.usefixtures("postgres_url", "redis_url"),
]


@dataclass(frozen=True)
class Sample:
    at: float
    done: int
    rss: int
    largest: int
    #: CPU seconds used so far: the worker's processes, the database server's processes for
    #: this database, this process (producer and fake provider), and the whole machine.
    worker_cpu: float
    database_cpu: float
    own_cpu: float
    machine_cpu: float


@dataclass(frozen=True)
class Band:
    """What happened between two levels of progress."""

    rate: float
    #: Deliveries per CPU second of the dispatcher (worker and database).
    per_cpu: float
    #: CPU milliseconds per delivery in the worker's processes and in the database's.
    worker_ms: float
    database_ms: float
    #: Cores' worth of CPU taken by this process (producer and fake provider) meanwhile.
    own: float
    #: Cores' worth of CPU taken by everything else on the machine meanwhile.
    outside: float

    def line(self) -> str:
        return (
            f"{self.rate:.0f}/s, {self.per_cpu:.0f} per dispatcher CPU second (worker "
            f"{self.worker_ms:.2f} ms, database {self.database_ms:.2f} ms per delivery), "
            f"{self.own:.2f} cores used by the test process, {self.outside:.2f} outside the run"
        )


class Meter:
    def __init__(self, stack: Stack, organisations: list[Tenant]) -> None:
        self.stack = stack
        self.organisations = [org.organisation_id for org in organisations]
        self.database = BackendClock(stack.engine)
        self.started = time.monotonic()
        self.samples: list[Sample] = []

    def sample(self) -> Sample:
        with self.stack.engine.connect() as connection:
            done = connection.execute(
                sa.text(
                    "SELECT count(*) FROM deliveries WHERE organisation_id = ANY(:orgs) "
                    "AND status IN ('sent', 'failed', 'skipped')"
                ),
                {"orgs": self.organisations},
            ).scalar_one()
        pids = self.stack.worker.pids
        sizes = rss_bytes(pids)
        taken = Sample(
            at=time.monotonic() - self.started,
            done=int(done),
            rss=sum(sizes.values()),
            largest=max(sizes.values()),
            worker_cpu=cpu_seconds(pids),
            database_cpu=self.database.seconds(),
            own_cpu=cpu_seconds([os.getpid()]),
            machine_cpu=machine_busy_seconds(),
        )
        self.samples.append(taken)
        return taken

    def band(self, low: float, high: float) -> Band:
        inside = [
            item for item in self.samples if DELIVERIES * low <= item.done <= DELIVERIES * high
        ]
        assert len(inside) >= 2, f"too few samples between {low:.0%} and {high:.0%}"
        first, last = inside[0], inside[-1]
        done, seconds = last.done - first.done, last.at - first.at
        worker = last.worker_cpu - first.worker_cpu
        database = last.database_cpu - first.database_cpu
        own = last.own_cpu - first.own_cpu
        ours = worker + database + own
        outside = (last.machine_cpu - first.machine_cpu) - ours
        return Band(
            rate=done / seconds,
            per_cpu=done / max(worker + database, 1e-9),
            worker_ms=1000 * worker / done,
            database_ms=1000 * database / done,
            own=own / seconds,
            outside=max(outside, 0.0) / seconds,
        )


def plan(organisations: list[Tenant]) -> list[tuple[Tenant, list[str], str]]:
    """(organisation, recipients, label) per trigger call, organisations taking turns."""
    return [
        (org, org.external_ids, f"round{round_}")
        for round_ in range(ROUNDS)
        for org in organisations
    ]


def feed_and_watch(meter: Meter, organisations: list[Tenant], total: int) -> None:
    """Trigger call after call while the backlog is short; sample every two seconds."""
    calls = plan(organisations)
    triggered, next_sample, latest = 0, 0.0, 0
    # A test server may run without autovacuum; a production one does not, and without it every
    # query on the deliveries wades through the dead versions of earlier status changes.
    next_vacuum = 0.0 if meter.stack.autovacuum_off() else float("inf")
    while True:
        now = time.monotonic()
        if now >= next_vacuum:
            meter.stack.vacuum("deliveries", "notifications", "delivery_attempts")
            next_vacuum = time.monotonic() + VACUUM_INTERVAL
        if now >= next_sample:
            latest = meter.sample().done
            next_sample = now + 2.0
            if latest >= total:
                return
            worker = meter.stack.worker
            assert worker.process.poll() is None, worker.log()[-3000:]
            assert now - meter.started < 1500, f"soak stalled at {latest} of {total}"
        if calls and triggered - latest < LOW_WATER:
            org, recipients, label = calls.pop(0)
            # Two sizes of event: 500 recipients go to the broker at once, 5,000 to the pump.
            per_event = 500 if len(calls) % 2 else 5_000
            trigger_all(org, recipients, per_event=per_event, events_per_call=4, label=label)
            triggered += len(recipients)
            continue
        time.sleep(0.2)


@pytest.mark.timeout(1800)
def test_soak(tmp_path: Path, say: Callable[[str], None]) -> None:
    per_organisation = DELIVERIES // (ORGANISATIONS * ROUNDS)
    total = per_organisation * ORGANISATIONS * ROUNDS
    behaviours = {name: {"fail_ratio": FAIL_RATIO, "latency_ms": 20} for name in ("a", "b")}
    with chaos_stack(tmp_path, SOAK_SETTINGS, proxied=False) as stack:
        organisations = [
            tenant(stack, per_organisation, names=("a", "b"), behaviours=behaviours)
            for _ in range(ORGANISATIONS)
        ]
        meter = Meter(stack, organisations)
        feed_and_watch(meter, organisations, total)
        elapsed = time.monotonic() - meter.started
        figures = count(
            stack.engine,
            [org.organisation_id for org in organisations],
            stack.fake.state.requests,
            expect_sent=False,
        )
    samples = meter.samples
    warm = next(sample for sample in samples if sample.done >= DELIVERIES * WARM)
    peak = max(sample.rss for sample in samples if sample.at >= warm.at)
    start, end = meter.band(*START_BAND), meter.band(*END_BAND)
    say(
        f"soak: {total} deliveries ({ORGANISATIONS} organisations x {per_organisation} "
        f"subscribers x {ROUNDS} rounds) in {elapsed:.0f}s, {total / elapsed:.0f}/s overall; "
        f"{FAIL_RATIO:.0%} of requests failing"
    )
    say(f"soak: at {START_BAND[0]:.0%}-{START_BAND[1]:.0%} done: {start.line()}")
    say(f"soak: at {END_BAND[0]:.0%}-{END_BAND[1]:.0%} done: {end.line()}")
    say(
        f"soak: throughput at the end {end.rate / start.rate:.0%} of the start; per dispatcher "
        f"CPU second {end.per_cpu / start.per_cpu:.0%}"
    )
    say(
        f"soak: worker RSS {warm.rss / MB:.0f} MB after warm-up (largest process "
        f"{warm.largest / MB:.0f} MB), peak {peak / MB:.0f} MB after it ({peak / warm.rss:.0%}), "
        f"{samples[-1].rss / MB:.0f} MB at the end"
    )
    say(f"soak: {figures.line()}")
    assert figures.deliveries == total
    assert figures.unfinished == 0
    assert figures.lost == 0
    assert figures.failed_but_accepted == 0
    # Under this load a provider request can outlast DISPATCHER_SEND_TIMEOUT (1.5 s here): such
    # an attempt is ambiguous and resent by default. Every other duplicate is a defect.
    assert figures.unexplained_duplicates == 0
    # Every request the provider saw is recorded as an attempt, and no attempt is invented.
    assert figures.attempts_mismatch == 0
    assert figures.by_answer.get("500", 0) > 0
    assert peak <= warm.rss * 1.2
    # Throughput per CPU second the dispatcher (worker and database) used: the wall-clock rate of
    # a band also moves with what else the shared host runs (runs here: 186%, 85%, 88%, 79% end
    # vs start by the clock; 165%, 84%, 89%, 91% per CPU second). In the CI's environment the
    # same run costs about twice the CPU per delivery (worker 1.9-2.1 ms against 0.95-1.0 ms
    # here) and drifts further: 76% and 80% per CPU second there, 97% and 101% here alone.
    # The floor catches what the test is for, a cost growing with the tables: a query scanning
    # the rows written so far costs four times as much at 80% done as at 20%.
    assert end.per_cpu >= start.per_cpu * 0.7

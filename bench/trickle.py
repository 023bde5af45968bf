"""Single-recipient triggers at rising rates, then critical ones during a blast.

Each ``trigger()`` names one subscriber, so every broker message carries one delivery: the shape
of transactional traffic, where a pool process that waits out the provider's latency per message
sends a few dozen deliveries a second. Per step: the offered rate (what the producers achieved),
deliveries the provider received per second during the step, the backlog left at its end, and
trigger-to-provider latency (from the trigger to the provider's answer, its latency included).
Then a blast of BENCH_BLAST deliveries with one critical trigger every 100 ms beside it: the
critical deliveries' latency, and the blast's rate.

Both worker modes run in the same process, one after the other: ``coalescing`` (the settings'
defaults) and ``baseline`` (``DISPATCHER_DELIVERY_COALESCING=false``,
``DISPATCHER_CRITICAL_RESERVED_PROCESSES=0``, ``DISPATCHER_GC_FREEZE_AFTER_FORK=false``: the
path as it was); ``no-freeze`` and ``gen0-N`` measure the collector's settings. CPU per delivery is the worker's (main and pool processes) CPU time over the
deliveries it sent.

Environment: BENCH_RATES ("100,250,500,1000"), BENCH_BASELINE_RATES ("100,250"),
BENCH_STEP_SECONDS (10), BENCH_PRODUCERS (4 processes), BENCH_PRODUCE ("bulk", or "trigger" for
one ``trigger()`` call per delivery, or "grouped": a message per producer tick), BENCH_BLAST (20000), BENCH_MODES ("coalescing,baseline"), plus those of :mod:`bench.throughput` (latency, worker processes, batch
size). Run: ``python -m bench trickle``.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.throughput import (
    LATENCY_MS,
    TUNING,
    WORKER_PROCESSES,
    fake_provider,
    prepare_tenant,
    process,
    worker_command,
)

RATES = [int(rate) for rate in os.environ.get("BENCH_RATES", "100,250,500,1000").split(",")]
BASELINE_RATES = [
    int(rate) for rate in os.environ.get("BENCH_BASELINE_RATES", "100,250").split(",") if rate
]
STEP_SECONDS = float(os.environ.get("BENCH_STEP_SECONDS", "10"))
PRODUCERS = int(os.environ.get("BENCH_PRODUCERS", "4"))
BLAST = int(os.environ.get("BENCH_BLAST", "20000"))
MODES = os.environ.get("BENCH_MODES", "coalescing,baseline").split(",")
PRODUCE = os.environ.get("BENCH_PRODUCE", "bulk")
BULK = PRODUCE in {"bulk", "grouped"}
#: Seconds between two ``trigger_bulk`` calls of a producer (BENCH_PRODUCE=bulk).
TICK = 0.02
SUBSCRIBERS = max(BLAST, 5000)
#: Seconds a step's backlog may take to drain before the next step starts.
DRAIN_SECONDS = 60.0
BASELINE = {
    "DISPATCHER_DELIVERY_COALESCING": "false",
    "DISPATCHER_CRITICAL_RESERVED_PROCESSES": "0",
    "DISPATCHER_GC_FREEZE_AFTER_FORK": "false",
}


def mode_settings(mode: str) -> dict[str, str]:
    """``baseline``; ``coalescing`` (the defaults); ``no-freeze`` (coalescing without
    ``gc.freeze``); ``gen0-N`` (coalescing, the collector's first threshold at N)."""
    if mode == "baseline":
        return BASELINE
    if mode == "no-freeze":
        return {"DISPATCHER_GC_FREEZE_AFTER_FORK": "false"}
    if mode.startswith("gen0-"):
        return {"DISPATCHER_GC_GEN0_THRESHOLD": mode.removeprefix("gen0-")}
    return {}


def warm_up() -> None:
    """Pool initializer: imports and connections before the first step, not inside it."""
    if PRODUCE == "bulk":
        # One broker message per delivery, as a single-recipient trigger publishes.
        os.environ["DISPATCHER_DELIVERY_BATCH_SIZE"] = "1"
    import dispatcher.runtime.resources

    dispatcher.runtime.resources.database()


def produce(organisation: str, workflow: str, rate: float, start_at: float, first: int) -> int:
    """One producer process: ``rate`` deliveries a second from ``start_at`` for the step's
    length, open loop (late ones are made at once, not skipped).

    BENCH_PRODUCE=trigger: one ``trigger()`` call per delivery. BENCH_PRODUCE=bulk (the
    default): the deliveries due every :data:`TICK` seconds are one ``trigger_bulk`` event,
    published as one broker message per delivery (the producer's batch size is 1), which is what
    the workers receive from single-recipient triggers; ``trigger()``'s own cost keeps this 2-core
    machine's producers well below the rates measured (about 17 ms a call on an idle machine).
    BENCH_PRODUCE=grouped: the same calls, each tick's deliveries in one message, as triggers
    committed together publish them."""
    from dispatcher import trigger_bulk

    time.sleep(max(0.0, start_at - time.time()))
    started = time.monotonic()
    made = 0
    while (elapsed := time.monotonic() - started) < STEP_SECONDS:
        due = int(elapsed * rate) + 1 - made
        if due <= 0:
            time.sleep(TICK if BULK else (made + 1) / rate - elapsed)
            continue
        names = [f"u{(first + (made + n) * PRODUCERS) % SUBSCRIBERS}" for n in range(due)]
        if BULK:
            events = [{"workflow": workflow, "to": names, "payload": {"code": "1234"}}]
        else:
            events = [{"workflow": workflow, "to": name, "payload": {"code": "1234"}}
                      for name in names]  # fmt: skip
        trigger_bulk(organisation, events)
        made += len(names)
        if BULK:
            time.sleep(TICK)
    return made


def run_producers(
    pool: Any, organisation: uuid.UUID, workflow: str, rate: float
) -> tuple[int, float]:
    """Answers the triggers made and the seconds they took."""
    start_at = time.time() + 0.5
    results = [
        pool.apply_async(produce, (str(organisation), workflow, rate / PRODUCERS, start_at, n))
        for n in range(PRODUCERS)
    ]
    made = sum(result.get() for result in results)
    return made, time.time() - start_at


def worker_cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time (user and system) so far of the worker's main process and of its pool processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    seconds = []
    for each in [pid, *map(int, children)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        seconds.append((int(fields[11]) + int(fields[12])) / ticks)
    return seconds[0] if seconds else 0.0, sum(seconds[1:])


def cpu_line(before: tuple[float, float], after: tuple[float, float], deliveries: int) -> str:
    main, pool = (after[0] - before[0], after[1] - before[1])
    per = 1000 / max(1, deliveries)
    return f"worker CPU {(main + pool) * per:.2f} ms/delivery ({main * per:.2f} main, {pool * per:.2f} pool)"


def provider_answers(url: str) -> dict[str, float]:
    """Delivery id -> when the fake provider answered it (received plus its latency)."""
    listed = httpx.get(f"{url}/_requests", timeout=60).json()["requests"]
    answers: dict[str, float] = {}
    for item in listed:
        if item["answer"] == "ok" and item["delivery_id"]:
            answers.setdefault(item["delivery_id"], item["at"] + LATENCY_MS / 1000)
    return answers


def deliveries_since(since: datetime, until: datetime, critical: bool | None = None) -> list[Any]:
    import sqlalchemy as sa

    from dispatcher.runtime.resources import database

    query = (
        "SELECT d.id, EXTRACT(EPOCH FROM n.created_at) AS created, d.status, w.critical "
        "FROM deliveries d JOIN notifications n ON n.id = d.notification_id "
        "JOIN workflows w ON w.id = n.workflow_id "
        "WHERE n.created_at >= :since AND n.created_at < :until"
    )
    with database().session() as session:
        rows = session.execute(sa.text(query), {"since": since, "until": until}).all()
    return [row for row in rows if critical is None or row.critical == critical]


def latencies(rows: list[Any], answers: dict[str, float]) -> list[float]:
    return sorted(
        answers[str(row.id)] - float(row.created) for row in rows if str(row.id) in answers
    )


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * share))]


def unfinished(rows: list[Any]) -> int:
    return sum(1 for row in rows if row.status not in {"sent", "failed", "skipped"})


def wait_drained(since: datetime, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not unfinished(deliveries_since(since, datetime.now(UTC))):
            return
        time.sleep(0.5)


def rising_rates(url: str, organisation: uuid.UUID, pid: int, rates: list[int]) -> list[str]:
    lines = []
    context = multiprocessing.get_context("spawn")
    with context.Pool(PRODUCERS, initializer=warm_up) as pool:
        pool.map(time.sleep, [0.1] * PRODUCERS)
        for rate in rates:
            lines.append(step(url, organisation, pid, pool, rate))
            print(lines[-1], flush=True)
    return lines


def step(url: str, organisation: uuid.UUID, pid: int, pool: Any, rate: int) -> str:
    httpx.delete(f"{url}/_requests", timeout=10)
    cpu = worker_cpu_seconds(pid)
    since = datetime.now(UTC)
    triggered, elapsed = run_producers(pool, organisation, "bench", rate)
    until = datetime.now(UTC)
    rows = deliveries_since(since, until)
    backlog = unfinished(rows)
    answers = provider_answers(url)
    in_step = sum(1 for at in answers.values() if at - LATENCY_MS / 1000 <= until.timestamp())
    wait_drained(since, DRAIN_SECONDS)
    answers = provider_answers(url)
    values = latencies(rows, answers)
    return (
        f"  offered {rate:>5}/s (achieved {triggered / elapsed:>6,.0f}/s): delivered "
        f"{in_step / elapsed:>6,.0f}/s, backlog at end {backlog:>6,}, trigger-to-provider "
        f"p50 {percentile(values, 0.5) * 1000:>6,.0f} ms p99 {percentile(values, 0.99) * 1000:>7,.0f} ms, "
        + cpu_line(cpu, worker_cpu_seconds(pid), len(answers))
    )


def blast_with_critical(url: str, organisation: uuid.UUID, pid: int) -> str:
    from dispatcher import trigger, trigger_bulk

    httpx.delete(f"{url}/_requests", timeout=10)
    cpu = worker_cpu_seconds(pid)
    since = datetime.now(UTC)
    started = time.time()
    trigger_bulk(organisation, [{"workflow": "bench", "to": [f"u{n}" for n in range(BLAST)],
                                 "payload": {"code": "1234"}}])  # fmt: skip
    number = 0
    while len(provider_answers(url)) < BLAST * 0.9 or number < 20:
        trigger(organisation, "bench-critical", f"u{number % SUBSCRIBERS}", {"code": "1234"})
        number += 1
        time.sleep(0.1)
    wait_drained(since, DRAIN_SECONDS)
    answers = provider_answers(url)
    spent = worker_cpu_seconds(pid)
    until = datetime.now(UTC)
    critical = latencies(deliveries_since(since, until, critical=True), answers)
    answered = list(answers.values())
    rate = len(answered) / (max(answered) - started) if answered else 0.0
    above = [value - LATENCY_MS / 1000 for value in critical]
    return (
        f"  blast of {BLAST:,}: {rate:,.0f}/s; {len(critical)} critical beside it: above the "
        f"provider's latency p50 {percentile(above, 0.5) * 1000:,.0f} ms, p99 "
        f"{percentile(above, 0.99) * 1000:,.0f} ms; " + cpu_line(cpu, spent, len(answers))
    )


def run_mode(url: str, mode: str) -> list[str]:
    # A database and broker of its own: the blast benchmark may run beside it. (Nothing of the
    # dispatcher is imported before: its settings are read once, from this environment.)
    organisation, env = prepare_tenant(url, SUBSCRIBERS, "dispatcher_bench_trickle", broker_db=13)
    from dispatcher import run_action
    from dispatcher.runtime.resources import database

    run_action(
        "create_workflow",
        {"key": "bench-critical", "name": "Bench critical", "critical": True, "steps": [
            {"kind": "email", "template": {"subject": "Code", "body": "{{ payload.code }}"}}]},
        organisation_id=organisation,
    )  # fmt: skip
    env.update(mode_settings(mode))
    print(f"{mode}:", flush=True)
    with process(worker_command(), env, f"trickle-{mode}-worker.log") as worker:
        time.sleep(4)  # worker start-up is not part of the figures
        lines = rising_rates(
            url, organisation, worker.pid, RATES if mode != "baseline" else BASELINE_RATES
        )
        lines.append(blast_with_critical(url, organisation, worker.pid))
        print(lines[-1], flush=True)
    database().dispose()
    return lines


def main() -> None:
    with fake_provider("fake-provider-trickle.log") as url:
        print(
            f"worker processes: {WORKER_PROCESSES}; {PRODUCERS} producer processes ({PRODUCE}); "
            + ", ".join(f"{k}={v}" for k, v in TUNING.items())
            + f"; fake provider answering after {LATENCY_MS:g} ms; steps of {STEP_SECONDS:g} s",
            flush=True,
        )
        results = {mode: run_mode(url, mode) for mode in MODES}
    print()
    for mode, lines in results.items():
        print(mode)
        print("\n".join(lines))

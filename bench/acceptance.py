"""Acceptance throughput: how many notifications a second the producer side writes and hands to
the broker, with PostgreSQL and Redis on this machine and no worker (nothing is sent).

Every figure is notifications accepted per second (one-recipient events, one email step each):

1. ``trigger()`` called in a loop by one thread: the baseline;
2. one transaction per trigger from 8 threads (``trigger_bulk`` of one event each: the path every
   single trigger took before group commit);
3. ``trigger()`` from 8 and from 32 threads of one process, and from 2 processes of 16 threads:
   group commit;
4. ``trigger_bulk`` of 2,000 events in one call, and the same events one transaction each.

Every measurement runs BENCH_REPEATS (3) rounds, interleaved; medians and ranges are reported.
Environment: BENCH_REPEATS, BENCH_POSTGRES_URL (admin URL, default the local ``test`` database),
BENCH_REDIS_URL. Talks only to loopback; run with ``python -m bench.acceptance``.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.throughput import REDIS, prepare_tenant

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
DATABASE = "dispatcher_bench_acceptance"
BROKER_DB = 13
SUBSCRIBERS = 2000
BULK_EVENTS = 2000
#: Queues nothing consumes: the messages are counted, then dropped.
QUEUES = {
    "DISPATCHER_DELIVERY_QUEUE": "bench-accept",
    "DISPATCHER_CRITICAL_QUEUE": "bench-accept-c",
}


def event(number: int) -> dict[str, Any]:
    return {
        "workflow": "bench",
        "to": f"u{number % SUBSCRIBERS}",
        "payload": {"code": str(number)},
        "transaction_id": uuid.uuid4().hex,
    }


def prepare() -> uuid.UUID:
    """A fresh database with one organisation, its workflow and its subscribers, on the
    dispatcher's default settings (the figures are of the defaults, not of the throughput
    benchmark's tuning). Its integration points at a closed port: no worker runs, nothing is
    sent."""
    os.environ.update(QUEUES)
    organisation, _ = prepare_tenant(
        "http://127.0.0.1:9", SUBSCRIBERS, DATABASE, BROKER_DB, tuning={}
    )
    return organisation


def single(organisation: uuid.UUID, number: int) -> None:
    from dispatcher import trigger

    raw = event(number)
    trigger(organisation, raw["workflow"], raw["to"], raw["payload"],
            transaction_id=raw["transaction_id"])  # fmt: skip


def own_transaction(organisation: uuid.UUID, number: int) -> None:
    from dispatcher import trigger_bulk

    trigger_bulk(organisation, [event(number)])


def threaded(call: Callable[[uuid.UUID, int], None], organisation: uuid.UUID,
             threads: int, calls: int) -> float:  # fmt: skip
    """Accepted/s of ``calls`` calls shared by ``threads`` threads."""
    start = threading.Barrier(threads + 1)

    def work(offset: int) -> None:
        start.wait()
        for number in range(offset, calls, threads):
            call(organisation, number)

    workers = [threading.Thread(target=work, args=(offset,)) for offset in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return calls / (time.perf_counter() - began)


def _process(organisation: str, threads: int, calls: int, ready: Any, go: Any, out: Any) -> None:
    from dispatcher.runtime.resources import database

    single(uuid.UUID(organisation), 0)  # connections and the committer up before the clock
    _ = database()
    ready.release()
    go.wait()
    out.put(threaded(single, uuid.UUID(organisation), threads, calls))


def processes(organisation: uuid.UUID, count: int, threads: int, calls: int) -> float:
    """Accepted/s of ``calls`` triggers per process, from ``count`` processes at once."""
    context = multiprocessing.get_context("spawn")
    ready, go, out = context.Semaphore(0), context.Event(), context.Queue()
    children = [
        context.Process(target=_process, args=(str(organisation), threads, calls, ready, go, out))
        for _ in range(count)
    ]
    for child in children:
        child.start()
    for _ in children:
        ready.acquire()
    began = time.perf_counter()
    go.set()
    for _ in children:
        out.get()
    elapsed = time.perf_counter() - began
    for child in children:
        child.join()
    return count * calls / elapsed


def bulk(organisation: uuid.UUID) -> float:
    from dispatcher import trigger_bulk

    events = [event(number) for number in range(BULK_EVENTS)]
    began = time.perf_counter()
    trigger_bulk(organisation, events)
    return BULK_EVENTS / (time.perf_counter() - began)


def messages() -> int:
    """Messages published to the benchmark's queues since the last call (then dropped)."""
    import redis

    client = redis.Redis.from_url(f"{REDIS}/{BROKER_DB}")
    count = sum(int(client.llen(queue)) for queue in QUEUES.values())
    client.delete(*QUEUES.values())
    client.close()
    return count


MEASUREMENTS: list[tuple[str, Callable[[uuid.UUID], float]]] = [
    ("trigger(), 1 thread (baseline)", lambda org: threaded(single, org, 1, 500)),
    ("one transaction per trigger, 8 threads (before)", lambda org: threaded(own_transaction, org, 8, 1000)),
    ("trigger(), 8 threads, group commit", lambda org: threaded(single, org, 8, 2000)),
    ("trigger(), 32 threads, group commit", lambda org: threaded(single, org, 32, 4000)),
    ("trigger(), 2 processes x 16 threads", lambda org: processes(org, 2, 16, 2000)),
    (f"{BULK_EVENTS} events, one transaction each (before)",
     lambda org: threaded(own_transaction, org, 1, 500)),
    (f"trigger_bulk of {BULK_EVENTS} events", bulk),
]  # fmt: skip


def main() -> None:
    organisation = prepare()
    single(organisation, 0)  # connections, the broker and the committer up before the clock
    messages()
    results: dict[str, list[float]] = {name: [] for name, _ in MEASUREMENTS}
    published: dict[str, int] = {}
    print(f"2 cores, PostgreSQL and Redis on this machine, no worker; {REPEATS} rounds, medians")
    for round_ in range(1, REPEATS + 1):
        for name, measure in MEASUREMENTS:
            results[name].append(measure(organisation))
            published[name] = messages()
        print(f"round {round_}: " + ", ".join(f"{values[-1]:,.0f}/s" for values in results.values()),
              flush=True)  # fmt: skip
    width = max(len(name) for name in results)
    print(f"\n{'path':<{width}}  {'accepted/s':>10}  {'range':>13}  {'messages (last round)':>22}")
    for name, values in results.items():
        low_high = f"{min(values):,.0f}-{max(values):,.0f}"
        print(f"{name:<{width}}  {statistics.median(values):>10,.0f}  {low_high:>13}  "
              f"{published[name]:>22,}")  # fmt: skip


if __name__ == "__main__":
    main()

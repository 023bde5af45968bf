"""Full-path throughput and latency, with two baselines on the same fake provider.

1. raw client ceiling: a bare async HTTP client posting to the fake provider (no queue, no DB);
2. plain Celery: one task per notification with a sync httpx call, prefork with 2 processes;
3. the dispatcher: trigger -> PostgreSQL -> Redis -> worker processes (4 by default) -> fake
   provider with 100 ms latency -> delivery rows.

Every measurement runs BENCH_REPEATS (3) rounds, interleaved, and the medians are reported: on a
shared 2-core machine one run varies by up to 20%.

Environment: BENCH_DELIVERIES (20000), BENCH_LATENCY_MS (100), BENCH_PLAIN_TASKS (300),
BENCH_WORKER_PROCESSES (4), BENCH_BATCH_SIZE (500), BENCH_CONCURRENCY (500), BENCH_REPEATS (3),
BENCH_SKIP_BASELINES (1 to measure the dispatcher alone),
BENCH_POSTGRES_URL (admin URL, default the local ``test`` database), BENCH_REDIS_URL.
Talks only to loopback.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

DELIVERIES = int(os.environ.get("BENCH_DELIVERIES", "20000"))
LATENCY_MS = float(os.environ.get("BENCH_LATENCY_MS", "100"))
PLAIN_TASKS = int(os.environ.get("BENCH_PLAIN_TASKS", "300"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
WORKER_PROCESSES = os.environ.get("BENCH_WORKER_PROCESSES", "4")
#: Dispatcher settings for the run (documented in the README next to the figures).
TUNING = {
    "DISPATCHER_DELIVERY_BATCH_SIZE": os.environ.get("BENCH_BATCH_SIZE", "500"),
    "DISPATCHER_SEND_CONCURRENCY_PER_INTEGRATION": os.environ.get("BENCH_CONCURRENCY", "500"),
}
ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
DATABASE = "dispatcher_bench"
WORK = Path(tempfile.mkdtemp(prefix="dispatcher-bench-"))
#: One key for every round: this process keeps its settings (and key ring) between rounds.
ENCRYPTION_KEY = Fernet.generate_key().decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env.update(extra)
    return env


@contextmanager
def process(command: list[str], env: dict[str, str], log: str) -> Iterator[subprocess.Popen[bytes]]:
    with (WORK / log).open("wb") as output:
        proc = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def fake_provider(log: str, paths: tuple[str, ...] = ("dispatcher",)) -> Iterator[str]:
    """The local fake provider on a free port, answering ``paths`` after :data:`LATENCY_MS`;
    yields its base URL."""
    url = f"http://127.0.0.1:{free_port()}"
    server = [sys.executable, "-m", "dispatcher.dev.fakeserver", "--port", url.rpartition(":")[2]]
    with process(server, child_env(), log):
        for _ in range(50):
            try:
                httpx.get(f"{url}/_stats", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        for path in paths:
            httpx.post(f"{url}/_control/{path}", json={"latency_ms": LATENCY_MS}, timeout=5)
        yield url


def fake_stats(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/_stats", timeout=10).json())


def raw_ceiling(url: str, transport: str, requests: int = 4000, concurrency: int = 200) -> float:
    from httpx_aiohttp import AiohttpTransport

    async def run() -> float:
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
        kwargs: dict[str, Any] = {"limits": limits, "timeout": 30}
        if transport == "aiohttp":
            kwargs["transport"] = AiohttpTransport(limits=limits, trust_env=False)
        async with httpx.AsyncClient(**kwargs) as client:
            gate = asyncio.Semaphore(concurrency)

            async def one(number: int) -> None:
                async with gate:
                    response = await client.post(
                        f"{url}/raw", json={"delivery_id": f"raw-{number}"}
                    )
                    response.raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(one(number) for number in range(requests)))
            return requests / (time.perf_counter() - started)

    return asyncio.run(run())


def plain_celery(url: str) -> float:
    broker = f"{REDIS}/11"
    import redis

    redis.Redis.from_url(broker).flushdb()
    env = child_env(BENCH_PLAIN_BROKER=broker)
    command = [sys.executable, "-m", "celery", "-A", "bench.plain_celery", "worker",
               "--pool", "prefork", "--concurrency", "2", "--loglevel", "WARNING",
               "--without-gossip", "--without-mingle"]  # fmt: skip
    before = fake_stats(url)["by_path"].get("plain", 0)
    with process(command, env, "plain-worker.log"):
        os.environ["BENCH_PLAIN_BROKER"] = broker
        from bench.plain_celery import send

        time.sleep(3)  # worker start-up is not part of the figure
        started = time.perf_counter()
        for number in range(PLAIN_TASKS):
            send.delay(f"{url}/plain", f"plain-{number}")
        while fake_stats(url)["by_path"].get("plain", 0) - before < PLAIN_TASKS:
            time.sleep(0.2)
        return PLAIN_TASKS / (time.perf_counter() - started)


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(largest process, all processes) peak resident memory of a worker and its children."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(child) for child in children]
    except OSError:
        pass
    peaks = []
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return (max(peaks, default=0.0), sum(peaks))


def prepare_tenant(
    url: str,
    subscribers: int,
    database_name: str = DATABASE,
    broker_db: int = 12,
    tuning: Mapping[str, str] | None = None,
) -> tuple[uuid.UUID, dict[str, str]]:
    """A fresh bench database with one organisation posting to the fake provider; answers the
    organisation and the worker's environment (also applied to this process). ``tuning``: the
    dispatcher settings of the run, :data:`TUNING` unless given (``{}``: the defaults)."""
    import sqlalchemy as sa

    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{database_name}"'))
    admin.dispose()
    database_url = f"{ADMIN_URL.rpartition('/')[0]}/{database_name}"
    broker = f"{REDIS}/{broker_db}"
    import redis

    redis.Redis.from_url(broker).flushdb()
    env = child_env(
        DISPATCHER_DATABASE_URL=database_url,
        DISPATCHER_BROKER_URL=broker,
        DISPATCHER_ENCRYPTION_KEYS=ENCRYPTION_KEY,
        DISPATCHER_DATA_DIR=str(WORK),
        DISPATCHER_URL_ALLOWLIST="127.0.0.1",
        **(TUNING if tuning is None else tuning),
    )
    os.environ.update({k: v for k, v in env.items() if k.startswith("DISPATCHER_")})
    from dispatcher import create_organisation, run_action
    from dispatcher.runtime.resources import database
    from models import Subscriber
    from models.migrate import upgrade

    upgrade(database_url)
    organisation = create_organisation("Bench")
    run_action(
        "create_integration",
        {"name": "fake", "provider": "fake_http", "credentials": {"api_key": "bench"},
         "settings": {"url": f"{url}/dispatcher"}, "is_primary": True},
        organisation_id=organisation,
    )  # fmt: skip
    run_action(
        "create_workflow",
        {"key": "bench", "name": "Bench", "steps": [
            {"kind": "email", "template": {"subject": "Hi {{ subscriber.first_name }}",
                                           "body": "Your code is {{ payload.code }}"}}]},
        organisation_id=organisation,
    )  # fmt: skip
    with database().transaction() as session:
        session.execute(
            sa.insert(Subscriber),
            [{"id": uuid.uuid4(), "organisation_id": organisation, "external_id": f"u{number}",
              "email": f"u{number}@example.com", "first_name": f"User{number}", "channels": {},
              "data": {}, "meta": {}} for number in range(subscribers)],
        )  # fmt: skip
    analyze()
    return organisation, env


def analyze() -> None:
    """Statistics for the planner, as autovacuum gathers them on a server with its default
    settings. This machine's PostgreSQL runs with autovacuum off, and without statistics the
    planner takes a trigger's lookups by ``(organisation, transaction id)`` or ``(organisation,
    subscriber id)`` through another index leading with the organisation, then filters the
    organisation's every row: milliseconds a statement, growing with the table."""
    import sqlalchemy as sa

    from dispatcher.runtime.resources import database

    with database().transaction() as session:
        session.execute(sa.text("ANALYZE"))


def worker_command() -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "dispatcher", "worker", "--pool", "prefork",
            "--concurrency", WORKER_PROCESSES, "--loglevel", "WARNING", "--without-gossip",
            "--without-mingle"]  # fmt: skip


def dispatcher_full_path(url: str) -> dict[str, float]:
    import sqlalchemy as sa

    from dispatcher import trigger_bulk
    from dispatcher.runtime.resources import database

    organisation, env = prepare_tenant(url, DELIVERIES)
    with process(worker_command(), env, "dispatcher-worker.log") as worker:
        time.sleep(4)  # worker start-up is not part of the figure
        started = time.time()
        trigger_bulk(organisation, [{"workflow": "bench", "to": [f"u{n}" for n in range(DELIVERIES)],
                                     "payload": {"code": "1234"}}])  # fmt: skip
        trigger_seconds = time.time() - started
        done = 0
        while done < DELIVERIES:
            time.sleep(0.5)
            with database().session() as session:
                done = (
                    session.scalar(
                        sa.text(
                            "SELECT count(*) FROM deliveries WHERE status IN ('sent','failed','skipped')"
                        )
                    )
                    or 0
                )
        largest, total = peak_rss_mb(worker.pid)
    with database().session() as session:
        rows = session.execute(sa.text(
            "SELECT EXTRACT(EPOCH FROM d.sent_at - n.created_at), EXTRACT(EPOCH FROM d.sent_at), d.status "
            "FROM deliveries d JOIN notifications n ON n.id = d.notification_id"
        )).all()  # fmt: skip
    database().dispose()
    latencies = sorted(float(row[0]) for row in rows if row[2] == "sent")
    last = max(float(row[1]) for row in rows if row[2] == "sent")
    sent = len(latencies)
    return {
        "deliveries": float(DELIVERIES),
        "sent": float(sent),
        "throughput": sent / (last - started),
        "trigger_seconds": trigger_seconds,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
        "rss_largest": largest,
        "rss_total": total,
    }


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median throughput (whole, so its latencies and RSS belong to it)."""
    ordered = sorted(runs, key=lambda run: run["throughput"])
    return ordered[len(ordered) // 2]


def spread(values: list[float]) -> str:
    return f"{min(values):,.0f}-{max(values):,.0f}" if len(values) > 1 else ""


def main() -> None:
    skip = os.environ.get("BENCH_SKIP_BASELINES") == "1"
    httpx_pool: list[float] = []
    aiohttp_pool: list[float] = []
    plain: list[float] = []
    full: list[dict[str, float]] = []
    with fake_provider("fake-provider.log", ("raw", "plain", "dispatcher")) as url:
        print(
            f"worker processes: {WORKER_PROCESSES}; "
            + ", ".join(f"{k}={v}" for k, v in TUNING.items())
        )
        print(
            f"fake provider answering after {LATENCY_MS:g} ms; {DELIVERIES} deliveries; 2 cores; "
            f"{REPEATS} rounds of every measurement, medians reported"
        )
        for round_ in range(1, REPEATS + 1):
            if not skip:
                httpx_pool.append(raw_ceiling(url, "httpx", requests=1000))
                aiohttp_pool.append(raw_ceiling(url, "aiohttp"))
                plain.append(plain_celery(url))
            full.append(dispatcher_full_path(url))
            print(
                f"round {round_}: "
                + (
                    ""
                    if skip
                    else f"httpx {httpx_pool[-1]:,.0f}/s, httpx over aiohttp "
                    f"{aiohttp_pool[-1]:,.0f}/s, plain Celery {plain[-1]:,.1f}/s, "
                )
                + f"dispatcher {full[-1]['throughput']:,.0f}/s",
                flush=True,
            )
    chosen = median_run(full)
    ceiling = statistics.median(aiohttp_pool or [1.0])
    httpx_ceiling = statistics.median(httpx_pool or [1.0])
    plain_rate = statistics.median(plain or [1.0])
    rows = [
        ("raw client ceiling: httpx AsyncClient, 200 in flight", httpx_ceiling, spread(httpx_pool), "", ""),
        ("raw client ceiling: httpx over aiohttp, 200 in flight", ceiling, spread(aiohttp_pool), "", ""),
        ("plain Celery: task per notification, sync httpx, prefork x2", plain_rate, spread(plain), "", ""),
        (f"dispatcher full path ({int(chosen['sent'])} sent)", chosen["throughput"],
         spread([run["throughput"] for run in full]), f"{chosen['p50']:.2f} s", f"{chosen['p99']:.2f} s"),
    ]  # fmt: skip
    width = max(len(row[0]) for row in rows)
    print(f"\n{'path':<{width}}  {'deliveries/s':>12}  {'range':>12}  {'p50':>8}  {'p99':>8}")
    for name, rate, low_high, p50, p99 in rows:
        print(f"{name:<{width}}  {rate:>12,.0f}  {low_high:>12}  {p50:>8}  {p99:>8}")
    print(f"\ntrigger call for {DELIVERIES} recipients: {chosen['trigger_seconds']:.2f} s")
    print(
        f"worker peak RSS: {chosen['rss_largest']:.0f} MB largest process, "
        f"{chosen['rss_total']:.0f} MB all"
    )
    if not skip:
        print(f"dispatcher / raw ceiling: {chosen['throughput'] / ceiling:.0%} (target 60%)")
        print(f"dispatcher / plain Celery: {chosen['throughput'] / plain_rate:.0f}x (target 50x)")

"""The HTTP API under load: ``POST /v1/events/trigger`` at rising open-loop rates, then the bulk
endpoint, with ``/healthz`` of the same server as the ceiling.

A real ``dispatcher api`` process (1, then 2 uvicorn workers) on loopback, against PostgreSQL and
Redis on this machine, one organisation with the ``bench`` workflow (one email step) and
BENCH_API_SUBSCRIBERS subscribers; every trigger names one subscriber. No worker runs: the
deliveries are written to the outbox and published to queues nobody reads, dropped after each
server. The clients are BENCH_API_CLIENTS processes, each the lean keep-alive client of
:mod:`bench.raw_http` (BENCH_API_TRANSPORT=aiohttp for an httpx ``AsyncClient`` over aiohttp,
``httpx`` for httpx's own transport: on this machine those cost the clients about 1.5 ms of CPU
a request, CPU the server then lacks), with connections warmed up before the clock.

Per server:

1. ``/healthz`` as fast as the clients go (closed loop, BENCH_API_INFLIGHT requests in flight per
   client): the ceiling of the clients and the server's request path together;
2. single triggers offered open loop at BENCH_API_RATES (250, 500, 1000, 2000/s) for
   BENCH_API_STEP_SECONDS (10) each: a request is started at its time whatever the ones before it
   did, and its latency runs from that time to the answer (so a client or server falling behind
   shows in the latency, not in a lower offered rate);
3. the bulk endpoint, closed loop, batches of BENCH_API_BATCHES one-recipient events (10 and
   100: Novu's limit is 100 events a request), 4 requests in flight per client.

Accepted means answered 201; errors count every other answer and every failed request. The
rows written are counted against the 201s. The server's per-key rate limit is raised out of the
way (it is measured by its own tests). The load average is printed before each step: the machine
is shared. Environment also: BENCH_API_WORKERS ("1,2"), BENCH_API_LOG_LEVEL (the server's, INFO:
an access log line a request), those of :mod:`bench.throughput`
(PostgreSQL and Redis URLs). Run: ``python -m bench api``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from bench.raw_http import RawClient
from bench.throughput import analyze, free_port, prepare_tenant, process

RATES = [int(rate) for rate in os.environ.get("BENCH_API_RATES", "250,500,1000,2000").split(",")]
WORKERS = [int(n) for n in os.environ.get("BENCH_API_WORKERS", "1,2").split(",")]
STEP_SECONDS = float(os.environ.get("BENCH_API_STEP_SECONDS", "10"))
CLIENTS = int(os.environ.get("BENCH_API_CLIENTS", "2"))
INFLIGHT = int(os.environ.get("BENCH_API_INFLIGHT", "64"))
BATCHES = [int(size) for size in os.environ.get("BENCH_API_BATCHES", "10,100").split(",") if size]
BULK_INFLIGHT = 4
TRANSPORT = os.environ.get("BENCH_API_TRANSPORT", "raw")
SUBSCRIBERS = int(os.environ.get("BENCH_API_SUBSCRIBERS", "5000"))
BROKER_DB = 14
#: Queues nothing consumes: dropped after each server.
QUEUES = {
    "DISPATCHER_DELIVERY_QUEUE": "bench-api",
    "DISPATCHER_CRITICAL_QUEUE": "bench-api-c",
}
SERVER_SETTINGS = {
    "DISPATCHER_API_RATE_LIMIT_PER_SECOND": "1000000",
    "DISPATCHER_API_RATE_LIMIT_BURST": "1000000",
    # INFO (the default) writes uvicorn's access line for every request.
    "DISPATCHER_LOG_LEVEL": os.environ.get("BENCH_API_LOG_LEVEL", "INFO"),
}
MAX_CONNECTIONS = 512


def event(number: int) -> dict[str, Any]:
    return {"name": "bench", "to": f"u{number % SUBSCRIBERS}", "payload": {"code": str(number)}}


class Client:
    """One client process's connections to the server: the lean client of
    :mod:`bench.raw_http` (BENCH_API_TRANSPORT=raw, the default), or an httpx ``AsyncClient``
    over aiohttp (``aiohttp``) or over its own transport (``httpx``), for comparison."""

    def __init__(self, url: str, key: str | None) -> None:
        self.url = url
        headers = {"Authorization": f"ApiKey {key}"} if key else {}
        self.raw: RawClient | None = None
        self.http: httpx.AsyncClient | None = None
        if TRANSPORT == "raw":
            address = httpx.URL(url)
            self.raw = RawClient(address.host, address.port or 80, headers, MAX_CONNECTIONS)
            return
        limits = httpx.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
        )
        kwargs: dict[str, Any] = {"limits": limits, "timeout": 30, "headers": headers}
        if TRANSPORT == "aiohttp":
            from httpx_aiohttp import AiohttpTransport

            kwargs["transport"] = AiohttpTransport(limits=limits, trust_env=False)
        self.http = httpx.AsyncClient(**kwargs)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.raw is not None:
            await self.raw.close()
        if self.http is not None:
            await self.http.aclose()

    async def warm(self, connections: int) -> None:
        if self.raw is not None:
            await self.raw.warm(connections)
        else:
            await asyncio.gather(*(self.call("GET", "/healthz") for _ in range(connections)))

    async def call(self, method: str, path: str, body: Any = None) -> int | str:
        """The answer's status, or the class of the error that stopped the request."""
        try:
            if self.raw is not None:
                status, _ = await asyncio.wait_for(
                    self.raw.send(self.raw.prepared(method, path, body)), 30
                )
                return status
            assert self.http is not None
            answer = await self.http.request(method, f"{self.url}{path}", json=body)
            return answer.status_code
        except (httpx.HTTPError, OSError, TimeoutError) as exc:
            return type(exc).__name__


class Tally:
    """One client process's answers in a step."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.items = 0
        self.errors: dict[str, int] = {}
        self.first = float("inf")
        self.last = 0.0

    def record(self, started: float, answer: int | str, items: int) -> None:
        ended = time.time()
        self.first, self.last = min(self.first, started), max(self.last, ended)
        if answer in {200, 201}:
            self.latencies.append(ended - started)
            self.items += items
        else:
            self.errors[str(answer)] = self.errors.get(str(answer), 0) + 1

    def result(self) -> dict[str, Any]:
        return dict(vars(self))


async def _open_loop(
    url: str, key: str, rate: float, start_at: float, first: int, step: int
) -> Tally:
    tally = Tally()
    async with Client(url, key) as http:
        await http.warm(min(MAX_CONNECTIONS, max(16, int(rate / 20))))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        tasks: set[asyncio.Task[None]] = set()

        async def one(number: int, due: float) -> None:
            answer = await http.call("POST", "/v1/events/trigger", event(number))
            tally.record(due, answer, 1)

        made = 0
        while (now := time.time()) < start_at + STEP_SECONDS:
            while made < int((now - start_at) * rate) + 1:
                due = start_at + made / rate
                task = asyncio.create_task(one(first + made * step, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                made += 1
            await asyncio.sleep(0.001)
        await asyncio.gather(*tasks)
    return tally


async def _closed_loop(url: str, key: str, start_at: float, batch: int, inflight: int) -> Tally:
    """``inflight`` loops posting until the step ends: healthz when ``batch`` is 0, else bulk."""
    tally = Tally()
    async with Client(url, key) as http:
        await http.warm(inflight)
        await asyncio.sleep(max(0.0, start_at - time.time()))

        async def loop(offset: int) -> None:
            number = offset * 1_000_000
            while time.time() < start_at + STEP_SECONDS:
                started = time.time()
                if batch:
                    body = {"events": [event(number + n) for n in range(batch)]}
                    answer = await http.call("POST", "/v1/events/trigger/bulk", body)
                else:
                    answer = await http.call("GET", "/healthz")
                tally.record(started, answer, max(batch, 1))
                number += batch

        await asyncio.gather(*(loop(n) for n in range(inflight)))
    return tally


async def _warm_up(url: str, key: str) -> None:
    """Every worker process's connections, committer and imports up before the clock."""
    async with Client(url, key) as http:
        for _ in range(5):
            bodies = [event(n) for n in range(64)]
            await asyncio.gather(*(http.call("POST", "/v1/events/trigger", b) for b in bodies))


def open_loop(url: str, key: str, rate: float, start_at: float, first: int) -> dict[str, Any]:
    return asyncio.run(_open_loop(url, key, rate, start_at, first, CLIENTS)).result()


def closed_loop(url: str, key: str, start_at: float, batch: int, inflight: int) -> dict[str, Any]:
    return asyncio.run(_closed_loop(url, key, start_at, batch, inflight)).result()


def merged(results: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = sorted(value for result in results for value in result["latencies"])
    errors: dict[str, int] = {}
    for result in results:
        for name, count in result["errors"].items():
            errors[name] = errors.get(name, 0) + count
    elapsed = max(r["last"] for r in results) - min(r["first"] for r in results)
    items = sum(result["items"] for result in results)

    def quantile(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0
        )

    return {"requests": len(latencies), "items": items, "per_second": items / elapsed,
            "p50": quantile(0.5), "p99": quantile(0.99), "errors": errors}  # fmt: skip


def notification_rows() -> int:
    import sqlalchemy as sa

    from dispatcher.runtime.resources import database

    with database().session() as session:
        return int(session.scalar(sa.text("SELECT count(*) FROM notifications")) or 0)


def drop_published() -> int:
    import redis

    from dispatcher.config import get_settings

    connection = redis.Redis.from_url(get_settings().broker_url)
    count = sum(int(connection.llen(queue)) for queue in QUEUES.values())
    connection.delete(*QUEUES.values())
    connection.close()
    return count


@contextmanager
def server(env: dict[str, str], workers: int) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "dispatcher.cli", "api", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers)]  # fmt: skip
    with process(command, env, f"api-{workers}.log"):
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"dispatcher api --workers {workers} did not answer in 60 s")
            time.sleep(0.3)
        yield url


def line(label: str, offered: str, figures: dict[str, Any], unit: str) -> None:
    errors = ", ".join(f"{n} {name}" for name, n in sorted(figures["errors"].items())) or "0"
    print(f"  {label:<28} {offered:>9} {figures['per_second']:>11,.0f} {unit:<14} "
          f"p50 {figures['p50']:>7.1f} ms  p99 {figures['p99']:>7.1f} ms  errors {errors}  "
          f"(load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip


def measure(pool: Any, url: str, key: str) -> None:
    def run(function: Any, args: list[tuple[Any, ...]]) -> dict[str, Any]:
        return merged([result.get() for result in [pool.apply_async(function, a) for a in args]])

    asyncio.run(_warm_up(url, key))
    analyze()  # with the warm-up's notifications in the tables
    start = lambda: time.time() + 1.5  # noqa: E731  (connections warm before the clock)
    at = start()
    ceiling = run(closed_loop, [(url, key, at, 0, INFLIGHT)] * CLIENTS)
    line(f"GET /healthz, {CLIENTS}x{INFLIGHT} in flight", "max", ceiling, "requests/s")
    for rate in RATES:
        rows = notification_rows()
        at = start()
        figures = run(open_loop, [(url, key, rate / CLIENTS, at, n) for n in range(CLIENTS)])
        written = notification_rows() - rows
        line("POST /v1/events/trigger", f"{rate:,}/s", figures, "accepted/s")
        if written != figures["items"]:
            print(f"    {written:,} notifications written for {figures['items']:,} answers 201")
    for batch in BATCHES:
        rows = notification_rows()
        at = start()
        figures = run(closed_loop, [(url, key, at, batch, BULK_INFLIGHT)] * CLIENTS)
        written = notification_rows() - rows
        line(f"POST .../trigger/bulk x{batch}", f"{CLIENTS}x{BULK_INFLIGHT} fl", figures,
             "notif./s")  # fmt: skip
        if written != figures["items"]:
            print(f"    {written:,} notifications written for {figures['items']:,} accepted")


def main() -> None:
    os.environ.update(QUEUES)
    organisation, env = prepare_tenant("http://127.0.0.1:9", SUBSCRIBERS, "dispatcher_bench_api",
                                       BROKER_DB)  # fmt: skip
    from dispatcher.api.keys import create_key  # after the tenant's settings are in place

    env.update(QUEUES, **SERVER_SETTINGS)
    key = create_key(organisation, "bench").key
    print(f"{os.cpu_count()} cores, PostgreSQL and Redis on this machine, no worker (deliveries "
          f"published to queues nobody reads); {CLIENTS} client processes ({TRANSPORT}), "
          f"{STEP_SECONDS:.0f} s a step, latency from the request's due time to its answer")  # fmt: skip
    context = multiprocessing.get_context("spawn")
    with context.Pool(CLIENTS) as pool:
        for workers in WORKERS:
            print(f"dispatcher api --workers {workers}:")
            with server(env, workers) as url:
                measure(pool, url, key)
            print(f"  ({drop_published():,} broker messages published, dropped)")


if __name__ == "__main__":
    main()

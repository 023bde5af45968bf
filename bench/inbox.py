"""The browser inbox's live connections: how many one API process holds, what each costs in
memory, and how fast a change reaches them.

A real ``dispatcher api`` process (one uvicorn worker) on PostgreSQL and Redis, one
organisation with BENCH_INBOX_CONNECTIONS (2000) subscribers; each gets a session
(``POST /v1/inbox/session``) and one Socket.IO connection over WebSocket (the protocol spoken by
hand with ``websockets``, as ``@novu/js``'s client speaks it: open packet, ``40`` connect, pong
to each ping), BENCH_INBOX_OPENING (100) opening at a time. Measured:

1. the API process's resident memory (``VmRSS``) before the first and after the last
   connection, divided by the connections: the memory of one connection;
2. the time to open them all (each counted open once it has received its counts);
3. fan-out: BENCH_INBOX_EVENTS (200) count changes published on the change feed for random
   subscribers, one after another, each timed from its publish to the arrival of its
   ``unread_count_changed`` on that subscriber's connection (median, p99, max);
4. broadcast: a new in-app message for every subscriber at once, as the worker's write-back of
   one broadcast leaves them: the rows inserted in one transaction, then one event each
   published in one pipeline after the commit; each connection's ``notification_received`` is
   timed from the publish (median, p99, max) and counted (how many of the connections got it
   within BENCH_INBOX_BROADCAST_WAIT, 60 s); and the API process's CPU time from the publish to
   the last arrival;
5. the same (memory, broadcast) for as many Server-Sent Event streams
   (``GET /v1/inbox/events``), in a second, fresh API process (BENCH_INBOX_SSE=0 skips it).

The clients run in this process, on the same machine (2 cores shared here): figures are a
floor, not a ceiling. Once they are open, this process's heap is frozen (``gc.freeze``), so
that its own full collections (2,000 client connections) do not delay the arrivals it times,
and a frame is told apart by its event's name, not parsed. Environment also: those of :mod:`bench.throughput` (PostgreSQL and Redis
URLs). Run: ``python -m bench inbox``.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.throughput import free_port, prepare_tenant, process

CONNECTIONS = int(os.environ.get("BENCH_INBOX_CONNECTIONS", "2000"))
OPENING = int(os.environ.get("BENCH_INBOX_OPENING", "100"))
EVENTS = int(os.environ.get("BENCH_INBOX_EVENTS", "200"))
BROADCAST_WAIT = float(os.environ.get("BENCH_INBOX_BROADCAST_WAIT", "60"))
#: "0": skip the Server-Sent Events part.
SSE = os.environ.get("BENCH_INBOX_SSE", "1") != "0"
BROKER_DB = 13


def cpu_seconds(pid: int) -> float:
    """The process's user and system CPU time so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Connection:
    """One page's Socket.IO connection; ``arrivals`` gets the time of each count change,
    ``received`` that of its first new message."""

    def __init__(self, subscriber: str) -> None:
        self.subscriber = subscriber
        self.opened = asyncio.Event()
        self.arrivals: asyncio.Queue[float] = asyncio.Queue()
        self.received: float | None = None
        self.got_message = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self, url: str, token: str) -> None:
        async with websockets.connect(
            f"ws{url.removeprefix('http')}/socket.io/?EIO=4&transport=websocket&token={token}",
            max_size=None,
        ) as socket:
            await socket.recv()  # the Engine.IO open packet
            await socket.send("40")
            async for frame in socket:
                text = frame if isinstance(frame, str) else frame.decode()
                if text == "2":
                    await socket.send("3")
                elif text.startswith('42["unread_count_changed"'):
                    if self.opened.is_set():
                        self.arrivals.put_nowait(time.perf_counter())
                    self.opened.set()
                elif text.startswith('42["notification_received"') and self.received is None:
                    self.received = time.perf_counter()
                    self.got_message.set()
                elif text.startswith("44"):
                    raise RuntimeError(f"refused: {text}")


class Stream(Connection):
    """One page's Server-Sent Events (``GET /v1/inbox/events``); the same figures."""

    def __init__(self, subscriber: str, client: httpx.AsyncClient) -> None:
        super().__init__(subscriber)
        self.client = client

    async def run(self, url: str, token: str) -> None:
        async with self.client.stream(
            "GET", f"{url}/v1/inbox/events", params={"token": token}
        ) as answer:
            answer.raise_for_status()
            async for line in answer.aiter_lines():
                if line == "event: unread_count_changed":
                    self.opened.set()
                elif line == "event: notification_received" and self.received is None:
                    self.received = time.perf_counter()
                    self.got_message.set()


async def sse_scenario(
    url: str, organisation: uuid.UUID, application: str, secret: str, pid: int
) -> dict[str, Any]:
    """The memory and broadcast figures of as many Server-Sent Event streams, in a fresh API
    process (the Socket.IO connections' memory is not reused)."""
    tokens = await _sessions(url, application, secret)
    rows = _subscriber_rows(organisation)
    before = rss_kib(pid)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(60, read=None)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        streams = [Stream(subscriber, client) for subscriber, _ in tokens]
        for start in range(0, CONNECTIONS, OPENING):
            batch = streams[start : start + OPENING]
            for stream, (_, token) in zip(batch, tokens[start : start + OPENING], strict=True):
                stream.task = asyncio.create_task(stream.run(url, token))
            await asyncio.wait_for(asyncio.gather(*(s.opened.wait() for s in batch)), 120)
        await asyncio.sleep(2)
        after = rss_kib(pid)
        gc.collect()
        gc.freeze()
        broadcast = await _broadcast(organisation, rows, list(streams), pid)
        alive = sum(1 for s in streams if s.task is not None and not s.task.done())
        for stream in streams:
            if stream.task is not None:
                stream.task.cancel()
        await asyncio.gather(*(s.task for s in streams if s.task), return_exceptions=True)
    return {
        "sse_streams": CONNECTIONS,
        "sse_alive_at_end": alive,
        "sse_rss_before_mib": round(before / 1024, 1),
        "sse_rss_after_mib": round(after / 1024, 1),
        "sse_kib_per_stream": round((after - before) / CONNECTIONS, 1),
        **{f"sse_{name}": value for name, value in broadcast.items()},
    }


async def _sessions(url: str, application: str, secret: str) -> list[tuple[str, str]]:
    """A session token for each subscriber (external id, token), OPENING at a time."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def session(number: int) -> tuple[str, str]:
            subscriber = f"u{number}"
            proof = hmac.new(secret.encode(), subscriber.encode(), hashlib.sha256).hexdigest()
            answer = await client.post(
                "/v1/inbox/session",
                json={"applicationIdentifier": application,
                      "subscriber": {"subscriberId": subscriber}, "subscriberHash": proof},
            )  # fmt: skip
            answer.raise_for_status()
            return subscriber, str(answer.json()["data"]["token"])

        tokens: list[tuple[str, str]] = []
        for start in range(0, CONNECTIONS, OPENING):
            tokens += await asyncio.gather(
                *(session(n) for n in range(start, min(start + OPENING, CONNECTIONS)))
            )
        return tokens


async def scenario(
    url: str, organisation: uuid.UUID, application: str, secret: str, pid: int
) -> dict[str, Any]:
    from dispatcher.runtime import inbox_events

    tokens = await _sessions(url, application, secret)
    rows = _subscriber_rows(organisation)
    before = rss_kib(pid)
    connections = [Connection(subscriber) for subscriber, _ in tokens]
    started = time.perf_counter()
    for start in range(0, CONNECTIONS, OPENING):
        batch = connections[start : start + OPENING]
        for connection, (_, token) in zip(batch, tokens[start : start + OPENING], strict=True):
            connection.task = asyncio.create_task(connection.run(url, token))
        await asyncio.wait_for(asyncio.gather(*(c.opened.wait() for c in batch)), 120)
    opening = time.perf_counter() - started
    await asyncio.sleep(2)  # let the server settle before reading its memory
    after = rss_kib(pid)
    # The clients' own heap (2,000 connections) out of this process's collector's reach, so
    # that its full collections do not delay the arrivals it times.
    gc.collect()
    gc.freeze()
    latencies = []
    for connection in random.Random(7).choices(connections, k=EVENTS):
        sent = time.perf_counter()
        await asyncio.to_thread(
            inbox_events.publish,
            [inbox_events.event(organisation, rows[connection.subscriber])],
        )
        arrived = await asyncio.wait_for(connection.arrivals.get(), 30)
        latencies.append((arrived - sent) * 1000)
        while not connection.arrivals.empty():
            connection.arrivals.get_nowait()
    broadcast = await _broadcast(organisation, rows, connections, pid)
    alive = sum(1 for c in connections if c.task is not None and not c.task.done())
    for connection in connections:
        if connection.task is not None:
            connection.task.cancel()
    latencies.sort()
    return {
        "connections": CONNECTIONS,
        "alive_at_end": alive,
        "rss_before_mib": round(before / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
        "kib_per_connection": round((after - before) / CONNECTIONS, 1),
        "open_all_s": round(opening, 2),
        "fanout_ms_median": round(statistics.median(latencies), 2),
        "fanout_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "fanout_ms_max": round(latencies[-1], 2),
        **broadcast,
    }


async def _broadcast(
    organisation: uuid.UUID, rows: dict[str, uuid.UUID], connections: list[Connection], pid: int
) -> dict[str, Any]:
    """One new message for every connection's subscriber, published in one burst; with the API
    process's CPU time from the publish to the last arrival (a figure the machine's load
    changes less than the latencies)."""
    from sqlalchemy import insert

    from dispatcher.runtime import inbox_events
    from dispatcher.runtime.resources import database
    from models import InboxMessage

    now = datetime.now(UTC)
    messages = [
        {"id": uuid.uuid4(), "organisation_id": organisation, "subscriber_id": rows[c.subscriber],
         "title": "Broadcast", "body": "To everyone at once", "created_at": now, "updated_at": now}
        for c in connections
    ]  # fmt: skip

    def write() -> None:
        with database().transaction() as session:
            session.execute(insert(InboxMessage), messages)

    await asyncio.to_thread(write)
    events = [inbox_events.event(organisation, m["subscriber_id"], m["id"]) for m in messages]
    cpu = cpu_seconds(pid)
    sent = time.perf_counter()
    await asyncio.to_thread(inbox_events.publish, events)
    waiting = [asyncio.create_task(c.got_message.wait()) for c in connections]
    await asyncio.wait(waiting, timeout=BROADCAST_WAIT)
    cpu = cpu_seconds(pid) - cpu
    for task in waiting:
        task.cancel()
    arrived = sorted((c.received - sent) * 1000 for c in connections if c.received is not None)
    if not arrived:
        return {"broadcast_received": 0}
    return {
        "broadcast_api_cpu_s": round(cpu, 2),
        "broadcast_received": len(arrived),
        "broadcast_ms_median": round(statistics.median(arrived), 1),
        "broadcast_ms_p99": round(arrived[max(int(len(arrived) * 0.99) - 1, 0)], 1),
        "broadcast_ms_max": round(arrived[-1], 1),
    }


def _subscriber_rows(organisation: uuid.UUID) -> dict[str, uuid.UUID]:
    from sqlalchemy import select

    from dispatcher.runtime.resources import database
    from models import Subscriber

    with database().session() as session:
        query = select(Subscriber.external_id, Subscriber.id).where(
            Subscriber.organisation_id == organisation
        )
        return {str(external): row_id for external, row_id in session.execute(query).all()}


def main() -> None:
    organisation, env = prepare_tenant(
        "http://127.0.0.1:9", CONNECTIONS, "dispatcher_bench_inbox", broker_db=BROKER_DB
    )
    env = {**env, "DISPATCHER_REDIS_URL": env["DISPATCHER_BROKER_URL"]}
    os.environ["DISPATCHER_REDIS_URL"] = env["DISPATCHER_REDIS_URL"]
    from dispatcher.api.inbox.secrets import rotate
    from dispatcher.config import reset_settings

    reset_settings()
    rotated = rotate(organisation)
    env["DISPATCHER_LOG_LEVEL"] = "WARNING"
    application, secret = rotated.application_identifier, rotated.secret
    with _serving(env, "api-inbox.log") as (url, pid):
        figures = asyncio.run(scenario(url, organisation, application, secret, pid))
    if SSE:
        with _serving(env, "api-inbox-sse.log") as (url, pid):
            figures.update(asyncio.run(sse_scenario(url, organisation, application, secret, pid)))
    print(json.dumps(figures, indent=2))


@contextmanager
def _serving(env: dict[str, str], log: str) -> Iterator[tuple[str, int]]:
    """A ``dispatcher api`` process, once it answers: its URL and process id."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "dispatcher.cli", "api", "--port", str(port)]
    with process(command, env, log) as api:
        for _ in range(120):
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("dispatcher api did not start")
        yield url, api.pid

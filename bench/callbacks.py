"""Provider callbacks under load: signed batches posted to ``POST /v1/webhooks/providers/{id}``
of a real ``dispatcher api`` process, applied by a real worker; events/s accepted and applied.

One organisation with one ``fake_http`` integration (``webhook_secret`` set) and
BENCH_CALLBACK_EVENTS (20000) deliveries already ``sent``, each with its provider message id,
written straight into the database. For each request size in BENCH_CALLBACK_BATCHES (100 and 1
events a request: SendGrid and Mailgun batch their events, Twilio sends one a request), the
clients post one ``delivered`` event per delivery, signed (HMAC-SHA256, ``providers.fake``), with
BENCH_CALLBACK_INFLIGHT (16) requests in flight (the lean client of :mod:`bench.raw_http`); the single-event round posts a tenth of the
events. Accepted is events answered 200 per second of posting; applied is events written
(``delivery_events`` rows, reported status set) per second from the first post to the last row.
The API runs one uvicorn worker, the worker BENCH_WORKER_PROCESSES (4) processes; ``GET
/healthz`` of the same server, at the same concurrency, is the ceiling of the HTTP path. Environment
also: those of :mod:`bench.throughput` (PostgreSQL and Redis URLs). Run:
``python -m bench callbacks``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime

import httpx

from bench.api import server
from bench.raw_http import RawClient
from bench.throughput import WORK, prepare_tenant, process, worker_command

EVENTS = int(os.environ.get("BENCH_CALLBACK_EVENTS", "20000"))
BATCHES = [int(n) for n in os.environ.get("BENCH_CALLBACK_BATCHES", "100,1").split(",")]
INFLIGHT = int(os.environ.get("BENCH_CALLBACK_INFLIGHT", "16"))
SECRET = "bench-webhook-secret"


def sent_deliveries(
    organisation: uuid.UUID, integration: uuid.UUID, prefix: str, count: int
) -> None:
    """``count`` sent deliveries with message ids ``<prefix>-<n>``, written in bulk."""
    import sqlalchemy as sa

    from dispatcher.runtime.resources import database
    from models import Delivery, Notification, Subscriber, Workflow

    with database().transaction() as session:
        workflow = session.scalar(
            sa.select(Workflow.id).where(Workflow.organisation_id == organisation)
        )
        subscriber = session.scalar(
            sa.select(Subscriber.id).where(Subscriber.organisation_id == organisation).limit(1)
        )
        now = datetime.now(UTC)
        notifications = [uuid.uuid4() for _ in range(count)]
        session.execute(sa.insert(Notification), [
            {"id": n, "organisation_id": organisation, "transaction_id": f"{prefix}-{i}",
             "workflow_id": workflow, "subscriber_id": subscriber, "payload": {}, "meta": {},
             "status": "completed", "created_at": now, "updated_at": now}
            for i, n in enumerate(notifications)
        ])  # fmt: skip
        session.execute(sa.insert(Delivery), [
            {"id": uuid.uuid4(), "organisation_id": organisation, "notification_id": n,
             "step_position": 0, "step_kind": "email", "channel_type": "email", "status": "sent",
             "attempts": 1, "integration_id": integration, "provider": "fake_http",
             "provider_message_id": f"{prefix}-{i}", "sent_at": now, "content": {}, "meta": {},
             "critical": False, "created_at": now, "updated_at": now}
            for i, n in enumerate(notifications)
        ])  # fmt: skip


def bodies(prefix: str, count: int, batch: int) -> list[tuple[bytes, dict[str, str]]]:
    from providers.fake import sign_fake_callback

    signed = []
    for start in range(0, count, batch):
        events = [{"id": f"{prefix}-{i}-d", "messageId": f"{prefix}-{i}", "status": "delivered",
                   "timestamp": time.time(), "recipient": "u0@example.com"}
                  for i in range(start, min(start + batch, count))]  # fmt: skip
        body = json.dumps(events).encode()
        signed.append((body, sign_fake_callback(SECRET, body)))
    return signed


async def post_all(
    url: str, signed: list[tuple[bytes, dict[str, str]]], method: str = "POST"
) -> tuple[int, int]:
    """(requests answered 200, other answers)."""
    queue = list(reversed(signed))
    ok = failed = 0
    address = httpx.URL(url)
    # The lean client of the API benchmark: httpx (over aiohttp or not) costs the clients more
    # CPU a request than the server spends on it, on the same two cores.
    client = RawClient(address.host, address.port or 80, {}, INFLIGHT)

    async def run() -> None:
        nonlocal ok, failed
        while queue:
            content, headers = queue.pop()
            data = client.prepared(method, address.raw_path.decode(), content=content or None,
                                   headers=headers)  # fmt: skip
            try:
                status, _ = await asyncio.wait_for(client.send(data), 60)
            except (OSError, TimeoutError):
                failed += 1
                continue
            ok, failed = (ok + 1, failed) if status == 200 else (ok, failed + 1)

    await asyncio.gather(*(run() for _ in range(INFLIGHT)))
    await client.close()
    return ok, failed


def applied(prefix: str) -> tuple[int, float | None]:
    """Events of this round written, and when the last one was."""
    import sqlalchemy as sa

    from dispatcher.runtime.resources import database

    with database().session() as session:
        count, last = session.execute(sa.text(
            "SELECT count(*), EXTRACT(EPOCH FROM max(created_at)) FROM delivery_events "
            "WHERE event_id LIKE :prefix"), {"prefix": f"{prefix}-%"}).one()  # fmt: skip
    return int(count), float(last) if last is not None else None


def main() -> None:
    organisation, env = prepare_tenant(
        "http://127.0.0.1:9", 1, database_name="dispatcher_bench_callbacks", broker_db=13
    )
    from dispatcher import Ok, run_action  # after the tenant's settings are in place

    created = run_action(
        "create_integration",
        {"name": "callbacks", "provider": "fake_http", "is_primary": False,
         "credentials": {"api_key": "bench", "webhook_secret": SECRET},
         "settings": {"url": "http://127.0.0.1:9/unused"}},
        organisation_id=organisation,
    )  # fmt: skip
    assert isinstance(created, Ok), created
    integration = uuid.UUID(str(created.value))
    print(f"load average {os.getloadavg()[0]:.1f}; work directory {WORK}")
    with process(worker_command(), env, "callbacks-worker.log"), server(env, 1) as url:
        time.sleep(4)  # worker start-up is not part of the figure
        endpoint = f"{url}/v1/webhooks/providers/{integration}"
        started = time.time()
        ok, _ = asyncio.run(post_all(f"{url}/healthz", [(b"", {})] * 2000, method="GET"))
        print(f"/healthz of the same server, the ceiling: {ok / (time.time() - started):,.0f}/s")
        for batch in BATCHES:
            count = EVENTS if batch > 1 else max(1, EVENTS // 10)
            prefix = f"b{batch}"
            sent_deliveries(organisation, integration, prefix, count)
            signed = bodies(prefix, count, batch)
            started = time.time()
            ok, failed = asyncio.run(post_all(endpoint, signed))
            posted = time.time() - started
            done, last = applied(prefix)
            deadline = time.time() + 300
            while done < count and time.time() < deadline:
                time.sleep(0.5)
                done, last = applied(prefix)
            elapsed = (last or time.time()) - started
            print(
                f"{batch:>4} events/request: {count} events in {len(signed)} requests "
                f"({ok} answered 200, {failed} not); accepted {count / posted:,.0f} events/s, "
                f"applied {done} ({done / elapsed:,.0f} events/s end to end); "
                f"load average {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()

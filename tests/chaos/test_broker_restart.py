"""The broker killed mid-run and started again empty: the worker lives on, sends what is
triggered after the restart, and the outbox sweeper recovers what the broker lost.

Redis: a ``redis-server`` of the test's own, SIGKILLed. RabbitMQ: a vhost of the test's own on the
shared server, deleted and added again (every connection to it is closed and its queues are gone,
as after a restart of a broker without persistence; the other vhosts are untouched).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.chaos.accounting import count
from tests.chaos.redis_server import own_redis_server
from tests.chaos.scenario import tenant, trigger_all
from tests.chaos.stack import Stack, chaos_stack
from tests.conftest import rabbitmq_vhost

DELIVERIES = 2_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.worker,
    pytest.mark.usefixtures("postgres_url", "redis_url"),
]


@dataclass(frozen=True)
class Broker:
    url: str
    kill: Callable[[], None]
    start: Callable[[], None]


@contextmanager
def broker_of_own(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Broker]:
    if kind == "redis":
        with own_redis_server(tmp_path) as server:
            yield Broker(server.url, server.kill, server.start)
    else:
        with rabbitmq_vhost(request.getfixturevalue("rabbitmq_url")) as vhost:
            yield Broker(vhost.url, vhost.delete, vhost.create)


def wait_until_sent(
    stack: Stack, organisation_id: uuid.UUID, number: int, timeout: float = 300
) -> None:
    deadline = time.monotonic() + timeout
    while stack.status_counts(organisation_id).get("sent", 0) < number:
        assert time.monotonic() < deadline, "nothing sent before the broker restart"
        time.sleep(0.05)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
def test_the_worker_survives_its_broker_killed_and_restarted_empty(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, say: Callable[[str], None]
) -> None:
    with (
        broker_of_own(kind, tmp_path, request) as broker,
        chaos_stack(tmp_path, broker_url=broker.url) as stack,
    ):
        org = tenant(
            stack, DELIVERIES, names=("primary",), behaviours={"primary": {"latency_ms": 50}}
        )
        before, after = org.external_ids[: DELIVERIES // 2], org.external_ids[DELIVERIES // 2 :]
        trigger_all(org, before, label="before")
        wait_until_sent(stack, org.organisation_id, len(before) // 5)
        broker.kill()
        at_kill = stack.status_counts(org.organisation_id)
        # Long enough for the worker's consumer, its pool and beat to hit the dead broker.
        time.sleep(3)
        broker.start()
        trigger_all(org, after, label="after")
        say(f"{kind} broker killed, then restarted empty; deliveries at the kill: {at_kill}")
        stack.wait_until_terminal(org.organisation_id, DELIVERIES, timeout=300)
        figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
        say(f"{kind} broker restart: {figures.line()}")
        final = stack.status_counts(org.organisation_id)
        worker_alive = stack.worker.process.poll() is None
        log = stack.worker.log()
    assert worker_alive, log[-3000:]
    assert "Unrecoverable error" not in log
    assert figures.deliveries == DELIVERIES
    assert figures.lost == 0
    assert figures.failed_but_accepted == 0
    assert final == {"sent": DELIVERIES}

"""End to end on RabbitMQ: a handful of the Redis end-to-end cases, on quorum queues in a vhost of
this module's own, with a real worker and beat; Redis keeps circuits, rate limits and results."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection

from dispatcher import create_organisation
from dispatcher.notifications.enqueue import queue_depth
from tests.chaos.accounting import count
from tests.chaos.scenario import tenant, trigger_all
from tests.chaos.stack import Stack, chaos_stack
from tests.conftest import rabbitmq_vhost
from tests.dispatcher.support import created_id, on_worker

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("postgres_url", "redis_url")]

#: Triggers larger than this go through the outbox pump (exercised here too).
SETTINGS = {"DISPATCHER_DIRECT_ENQUEUE_LIMIT": "100", "DISPATCHER_PUMP_ROUND_SIZE": "100"}


@pytest.fixture(scope="module")
def stack(rabbitmq_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with (
        rabbitmq_vhost(rabbitmq_url) as vhost,
        chaos_stack(
            tmp_path_factory.mktemp("rabbitmq"), SETTINGS, proxied=False, broker_url=vhost.url
        ) as running,
    ):
        yield running


def test_deliveries_with_transient_failures_are_all_sent_once(stack: Stack) -> None:
    # The first 40 answers are 500s: their retries go back to the broker with a countdown
    # (native delayed delivery on RabbitMQ), one attempt left for each of them.
    org = tenant(stack, 300, names=("primary",), behaviours={"primary": {"script": ["500"] * 40}})
    trigger_all(org, per_event=150, label="rabbit")
    stack.wait_until_terminal(org.organisation_id, 300, timeout=180)
    figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
    assert figures.deliveries == 300
    assert figures.by_status == {"sent": 300}
    assert figures.lost == 0
    assert figures.duplicates == 0
    assert figures.requests == 340  # the 40 retried once each


def test_an_action_answers_through_the_redis_result_backend(stack: Stack) -> None:
    organisation_id = create_organisation(f"Org {uuid.uuid4().hex[:6]}")
    result = on_worker("create_user", {"name": "Ada", "email": "ada@example.com"}, organisation_id)
    created_id(result)


def test_queue_depth_and_the_sweeper_recover_a_purged_queue(stack: Stack) -> None:
    queue = stack.environment["DISPATCHER_DELIVERY_QUEUE"]
    stack.kill_worker()
    org = tenant(stack, 200, names=("primary",))
    trigger_all(org, per_event=50, label="purged")
    depth = queue_depth(queue)
    with Connection(stack.environment["DISPATCHER_BROKER_URL"]) as connection:
        purged = connection.default_channel.queue_purge(queue)
    stack.start_worker()
    stack.wait_until_terminal(org.organisation_id, 200, timeout=180)
    figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
    assert depth > 0
    assert purged == depth
    assert figures.by_status == {"sent": 200}
    assert figures.lost == 0


def test_the_queues_are_quorum_queues(stack: Stack) -> None:
    vhost = stack.environment["DISPATCHER_BROKER_URL"].rsplit("/", 1)[1]
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "type"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    types = dict(line.split() for line in listed.splitlines() if line.strip())
    names = ("DISPATCHER_ACTION_QUEUE", "DISPATCHER_DELIVERY_QUEUE", "DISPATCHER_CRITICAL_QUEUE")
    assert {stack.environment[name]: types.get(stack.environment[name]) for name in names} == {
        stack.environment[name]: "quorum" for name in names
    }

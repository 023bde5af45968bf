"""Small delivery messages coalesced in the worker: sent together, acknowledged late, nothing lost
when a pool process dies mid-batch, and the critical lane free during a normal batch."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from dispatcher import trigger_bulk
from tests.chaos.accounting import count
from tests.chaos.redis_server import own_redis_server
from tests.chaos.scenario import WORKFLOW, Tenant, tenant
from tests.chaos.stack import Stack, chaos_stack, descendants
from tests.dispatcher.notify_support import EMAIL_STEP, workflow

pytestmark = [
    pytest.mark.slow,
    pytest.mark.worker,
    pytest.mark.usefixtures("postgres_url", "redis_url"),
]

CRITICAL_WORKFLOW = "chaos-critical"


def trigger_one_by_one(org: Tenant, recipients: list[str], key: str = WORKFLOW) -> None:
    """One call, one event, one recipient each: one broker message per delivery."""
    for number, recipient in enumerate(recipients):
        trigger_bulk(org.organisation_id, [{"workflow": key, "to": recipient,
                                            "payload": {"code": str(number)}}])  # fmt: skip


def rows(stack: Stack, organisation_id: uuid.UUID) -> list[sa.Row[tuple[str, str, str]]]:
    with stack.engine.connect() as connection:
        return list(
            connection.execute(
                sa.text(
                    "SELECT d.id::text, d.status, s.external_id FROM deliveries d "
                    "JOIN notifications n ON n.id = d.notification_id "
                    "JOIN subscribers s ON s.id = n.subscriber_id WHERE d.organisation_id = :org"
                ),
                {"org": organisation_id},
            ).all()
        )


def claim_tokens(stack: Stack, organisation_id: uuid.UUID) -> dict[str, str]:
    """Delivery id -> the token of the batch that claimed it last (one token per batch)."""
    with stack.engine.connect() as connection:
        return {
            str(row[0]): str(row[1])
            for row in connection.execute(
                sa.text("SELECT id, claim_token FROM deliveries WHERE organisation_id = :org"),
                {"org": organisation_id},
            )
        }


def unacknowledged(stack: Stack, queue: str) -> int:
    """Messages of ``queue`` the worker holds without having acknowledged them (kombu keeps them
    in the broker's ``unacked`` hash until the ack)."""
    client = stack.redis()
    try:
        held = client.hvals("unacked")
    finally:
        client.close()
    return sum(1 for raw in held if json.loads(raw)[2] == queue)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.mark.timeout(180)
def test_messages_that_wait_for_a_process_go_as_one_batch_acknowledged_after_it(
    tmp_path: Path,
) -> None:
    # A broker of the test's own: the suite's Redis database is flushed by other chaos stacks.
    with (
        own_redis_server(tmp_path) as broker,
        chaos_stack(tmp_path, proxied=False, broker_url=broker.url) as stack,
    ):
        org = tenant(stack, 6, names=("primary",), behaviours={"primary": {"latency_ms": 1200}})
        queue = stack.environment["DISPATCHER_DELIVERY_QUEUE"]
        trigger_one_by_one(org, org.external_ids)
        # Two processes, one reserved for critical work: the first message is sent alone, the
        # five behind it wait for that process and then go together.
        wait_for(lambda: len(stack.fake.state.requests) == 6, "the second batch was not sent")
        held_while_sending = unacknowledged(stack, queue)
        sending = sum(1 for row in rows(stack, org.organisation_id) if row.status == "sending")
        stack.wait_until_terminal(org.organisation_id, 6, timeout=60)
        tokens = claim_tokens(stack, org.organisation_id)
        figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
        wait_for(lambda: unacknowledged(stack, queue) == 0, "messages left unacknowledged")
    assert figures.lost == 0
    assert figures.duplicates == 0
    assert len(set(tokens.values())) == 2
    assert sorted(list(tokens.values()).count(token) for token in set(tokens.values())) == [1, 5]
    # Acknowledged only once written: the batch's five messages were held while it was sent.
    assert sending == 5
    assert held_while_sending == 5


@pytest.mark.timeout(180)
def test_a_critical_delivery_is_sent_while_normal_ones_wait_for_their_process(
    tmp_path: Path,
) -> None:
    with chaos_stack(tmp_path, proxied=False) as stack:
        org = tenant(stack, 3, names=("primary",), behaviours={"primary": {"latency_ms": 1200}})
        workflow(org.organisation_id, CRITICAL_WORKFLOW, [EMAIL_STEP], critical=True)
        first, second, urgent = org.external_ids
        trigger_one_by_one(org, [first])
        wait_for(lambda: len(stack.fake.state.requests) == 1, "the first batch was not sent")
        trigger_one_by_one(org, [second])
        trigger_one_by_one(org, [urgent], key=CRITICAL_WORKFLOW)
        stack.wait_until_terminal(org.organisation_id, 3, timeout=60)
        by_id = {row.id: row.external_id for row in rows(stack, org.organisation_id)}
        order = [by_id[item.delivery_id] for item in stack.fake.state.requests]
    # The second normal delivery waits for the process the first one holds; the critical one
    # takes the process normal batches may not occupy.
    assert order == [first, urgent, second]


@pytest.mark.timeout(300)
def test_a_pool_process_killed_mid_coalesced_batch_loses_nothing(
    tmp_path: Path, say: Callable[[str], None]
) -> None:
    deliveries = 300
    settings = {"DISPATCHER_CRITICAL_RESERVED_PROCESSES": "0"}
    with chaos_stack(tmp_path, settings, proxied=False) as stack:
        org = tenant(
            stack, deliveries, names=("primary",), behaviours={"primary": {"latency_ms": 1000}}
        )
        trigger_one_by_one(org, org.external_ids)

        def coalesced_batch_in_flight() -> bool:
            sending = {
                row.id for row in rows(stack, org.organisation_id) if row.status == "sending"
            }
            requested = {item.delivery_id for item in stack.fake.state.requests[-100:]}
            tokens = claim_tokens(stack, org.organisation_id)
            in_flight = sending & requested
            return len(in_flight) > 1 and len({tokens[item] for item in in_flight}) < len(in_flight)

        wait_for(coalesced_batch_in_flight, "no coalesced batch in flight to kill", timeout=120)
        at_kill = stack.status_counts(org.organisation_id)
        for pid in descendants(stack.worker.process.pid):
            os.kill(pid, signal.SIGKILL)
        say(f"SIGKILL to the pool processes; at the kill: {at_kill}")
        stack.wait_until_terminal(org.organisation_id, deliveries, timeout=180)
        figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
        tokens = claim_tokens(stack, org.organisation_id)
        log = stack.worker.log()
    say(f"coalesced kill: {figures.line()}; {len(set(tokens.values()))} batches")
    assert figures.deliveries == deliveries
    assert figures.lost == 0
    assert figures.failed_but_accepted == 0
    assert figures.duplicates <= at_kill.get("sending", 0)
    # Each message of the killed batches went back by Celery's rule for a lost worker.
    assert "WorkerLostError" in log
    assert len(set(tokens.values())) < deliveries


@pytest.mark.timeout(240)
def test_a_critical_delivery_triggered_during_a_blast_goes_before_the_blast_has_gone(
    tmp_path: Path,
) -> None:
    with chaos_stack(tmp_path, proxied=False) as stack:
        org = tenant(stack, 1001, names=("primary",), behaviours={"primary": {"latency_ms": 1000}})
        workflow(org.organisation_id, CRITICAL_WORKFLOW, [EMAIL_STEP], critical=True)
        *blast, urgent = org.external_ids
        # Twenty messages of 50 (the stack's batch size): one process sends them 50 a second.
        trigger_bulk(org.organisation_id, [{"workflow": WORKFLOW, "to": blast,
                                            "payload": {"code": "blast"}}])  # fmt: skip
        wait_for(lambda: len(stack.fake.state.requests) >= 50, "the blast did not start")
        trigger_one_by_one(org, [urgent], key=CRITICAL_WORKFLOW)
        stack.wait_until_terminal(org.organisation_id, 1001, timeout=180)
        by_id = {row.id: row.external_id for row in rows(stack, org.organisation_id)}
        order = [by_id[item.delivery_id] for item in stack.fake.state.requests]
        figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
    assert figures.lost == 0
    # Neither the blast's messages held in the worker nor its batches in the pool delay it: it
    # is sent while the blast's first batch is (waiting for a process, it would follow at least
    # the two batches the processes hold).
    assert order.index(urgent) < 100, order.index(urgent)

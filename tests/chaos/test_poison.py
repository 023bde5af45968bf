"""Poison planted straight in the delivery queue: rejected once with a logged reason, while the
good deliveries around it keep flowing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kombu import Connection, Exchange

from tests.chaos.accounting import count
from tests.chaos.scenario import tenant, trigger_all
from tests.chaos.stack import Stack, chaos_stack

GOOD_DELIVERIES = 600
COPIES = 2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.worker,
    pytest.mark.usefixtures("postgres_url", "redis_url"),
]


@dataclass(frozen=True)
class Poison:
    kind: str
    #: Text that appears in the worker log once the message was dealt with, and only then.
    reason: str
    body: bytes
    headers: dict[str, Any]
    #: How often one copy logs ``reason``.
    per_copy: int = 1


def celery_headers(task: str, task_id: str) -> dict[str, Any]:
    """Celery's message protocol 2, as ``send_task`` writes it."""
    return {
        "lang": "py", "task": task, "id": task_id, "root_id": task_id, "parent_id": None,
        "group": None, "retries": 0, "eta": None, "expires": None, "shadow": None,
        "timelimit": [None, None], "argsrepr": "", "kwargsrepr": "", "origin": "chaos",
        "ignore_result": True,
    }  # fmt: skip


def task_body(args: Any, kwargs: Any) -> bytes:
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return json.dumps([args, kwargs, embed]).encode()


def poisons(deleted_ids: list[str]) -> list[Poison]:
    def marker() -> str:
        return uuid.uuid4().hex

    def deliver(args: Any, kwargs: Any, reason: str, kind: str, per_copy: int = 1) -> Poison:
        headers = celery_headers("dispatcher.deliver", marker())
        return Poison(kind, reason, task_body(args, kwargs), headers, per_copy)

    broken_id = marker()
    unknown_id = marker()
    return [
        Poison(
            "body that is not JSON",
            "Can't decode message body",
            b'{"not json' + broken_id.encode(),
            celery_headers("dispatcher.deliver", broken_id),
        ),
        Poison(
            "body that is not a Celery body",
            "Received invalid task message: malformed message (ValueError",
            json.dumps({"delivery_ids": [], "marker": marker()}).encode(),
            celery_headers("dispatcher.deliver", marker()),
        ),
        Poison(
            "task header without a task id",
            "Received invalid task message: malformed message (KeyError: 'id')",
            task_body([], {"delivery_ids": [], "marker": marker()}),
            {"task": "dispatcher.deliver", "lang": "py"},
        ),
        Poison(
            "message without task headers",
            "Received and deleted unknown message",
            json.dumps({"hello": marker()}).encode(),
            {},
        ),
        Poison(
            "unknown task name",
            "Received unregistered task of type 'dispatcher.no_such_task'",
            task_body([], {"marker": unknown_id}),
            celery_headers("dispatcher.no_such_task", unknown_id),
        ),
        deliver(
            [], {"delivery_ids": "not-a-list"},
            "rejected a message without a list of delivery ids", "a string for the ids",
        ),
        deliver(
            [], {"delivery_ids": {"a": 1}},
            "rejected a message without a list of delivery ids", "a mapping for the ids",
        ),
        deliver(
            ["positional", "extra", "arguments"], {},
            "raised unexpected: TypeError('deliver() takes from 1 to 2 positional arguments "
            "but 4 were given')",
            "too many positional arguments",
        ),
        deliver(
            [], {"ids": []},
            "raised unexpected: TypeError(\"deliver() got an unexpected keyword argument 'ids'\")",
            "an unknown keyword argument",
        ),
        deliver(
            [], {"delivery_ids": ["not-a-uuid", 42, None, {"x": 1}]},
            "ignoring a delivery id that is not a UUID", "ids that are not UUIDs", per_copy=4,
        ),
        deliver(
            [], {"delivery_ids": deleted_ids},
            f"ignoring {len(deleted_ids)} delivery ids that name no delivery",
            "ids of deleted deliveries",
        ),
    ]  # fmt: skip


def plant(stack: Stack, items: list[Poison]) -> None:
    queue = stack.environment["DISPATCHER_DELIVERY_QUEUE"]
    with Connection(stack.redis_url) as connection:
        producer = connection.Producer()
        for item in items:
            producer.publish(
                item.body,
                exchange=Exchange(queue, type="direct"),
                routing_key=queue,
                content_type="application/json",
                content_encoding="utf-8",
                headers=item.headers,
            )


def deleted_delivery_ids(stack: Stack) -> list[str]:
    """Deliveries that were written, handed to the worker and sent, then deleted."""
    victim = tenant(stack, 5, names=("primary",), label="Victim")
    trigger_all(victim, label="victim")
    stack.wait_until_terminal(victim.organisation_id, 5, timeout=60)
    with stack.engine.begin() as connection:
        ids = connection.execute(
            sa.text("DELETE FROM deliveries WHERE organisation_id = :org RETURNING id"),
            {"org": victim.organisation_id},
        ).scalars()
        return [str(item) for item in ids] + [str(uuid.uuid4()) for _ in range(3)]


@pytest.mark.timeout(300)
def test_poison_messages_are_rejected_once_with_a_reason_and_the_rest_keeps_flowing(
    tmp_path: Path, say: Callable[[str], None]
) -> None:
    with chaos_stack(tmp_path) as stack:
        deleted = deleted_delivery_ids(stack)
        org = tenant(stack, GOOD_DELIVERIES, names=("primary",))
        third = GOOD_DELIVERIES // 3
        items = poisons(deleted)
        trigger_all(org, org.external_ids[:third], label="before")
        plant(stack, items)
        trigger_all(org, org.external_ids[third : 2 * third], label="between")
        plant(stack, items)  # a second copy of each is no different from the first
        trigger_all(org, org.external_ids[2 * third :], label="after")
        stack.wait_until_terminal(org.organisation_id, GOOD_DELIVERIES, timeout=120)
        figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
        # Long enough for a message that went back to the queue to come round again.
        time.sleep(5)
        log = stack.worker.log()
        client = stack.redis()
        queue = stack.environment["DISPATCHER_DELIVERY_QUEUE"]
        left_queued, left_unacked = client.llen(queue), client.hlen("unacked")
        client.close()
        worker_alive = stack.worker.process.poll() is None
    expected: dict[str, int] = {}
    for item in items:
        expected[item.reason] = expected.get(item.reason, 0) + COPIES * item.per_copy
    seen = {reason: log.count(reason) for reason in expected}
    say(
        f"poison: {len(items)} kinds x {COPIES} copies; queued after {left_queued}, unacked {left_unacked}"
    )
    for item in items:
        say(f"poison: {item.kind}: {log.count(item.reason)} x {item.reason!r}")
    say(f"poison: good deliveries: {figures.line()}")
    # Each copy dealt with exactly once, with its reason; none left to come round again.
    assert seen == expected
    assert (left_queued, left_unacked) == (0, 0)
    assert worker_alive
    assert figures.deliveries == GOOD_DELIVERIES
    assert figures.lost == 0
    assert figures.duplicates == 0


@pytest.mark.timeout(300)
def test_a_malformed_body_for_any_registered_task_does_not_stop_the_worker(tmp_path: Path) -> None:
    with chaos_stack(tmp_path) as stack:
        org = tenant(stack, 50, names=("primary",))
        task_id = uuid.uuid4().hex
        body = json.dumps({"organisation_id": None, "arguments": {}}).encode()
        plant(stack, [Poison("action", "", body, celery_headers("action.create_user", task_id))])
        trigger_all(org)
        stack.wait_until_terminal(org.organisation_id, 50, timeout=60)
        assert "Received invalid task message: malformed message" in stack.worker.log()

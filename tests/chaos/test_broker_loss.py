"""Redis restarted without persistence in the middle of a run: the outbox sweeper recovers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.accounting import count
from tests.chaos.scenario import tenant, trigger_all
from tests.chaos.stack import chaos_stack

DELIVERIES = 4_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.worker,
    pytest.mark.usefixtures("postgres_url", "redis_url"),
]


@pytest.mark.timeout(600)
def test_redis_restarted_without_persistence_loses_nothing(
    tmp_path: Path, say: Callable[[str], None]
) -> None:
    with chaos_stack(tmp_path) as stack:
        org = tenant(
            stack, DELIVERIES, names=("primary",), behaviours={"primary": {"latency_ms": 50}}
        )
        first, second = org.external_ids[: DELIVERIES // 2], org.external_ids[DELIVERIES // 2 :]
        trigger_all(org, first, label="before")
        deadline = time.monotonic() + 300
        while stack.status_counts(org.organisation_id).get("sent", 0) < len(first) * 0.2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        queued = stack.redis().llen(stack.environment["DISPATCHER_DELIVERY_QUEUE"])
        with stack.redis_proxy.outage():
            stack.flush_redis()
            at_restart = stack.status_counts(org.organisation_id)
            # Producers carry on while the broker is away: their rows wait for the sweeper.
            started = time.monotonic()
            trigger_all(org, second, label="during")
            trigger_seconds = time.monotonic() - started
            time.sleep(2)
        say(
            f"Redis flushed with {queued} messages queued; deliveries then: {at_restart}; "
            f"{len(second)} triggered during the outage in {trigger_seconds:.1f}s"
        )
        stack.wait_until_terminal(org.organisation_id, DELIVERIES, timeout=300)
        figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
        say(f"redis restart: {figures.line()}")
    assert figures.deliveries == DELIVERIES
    assert figures.lost == 0
    assert figures.failed_but_accepted == 0
    # No worker died: the sends made while Redis was away are not repeated either.
    assert figures.duplicates == 0

"""A batch that outlives its send lease: renewed while it works, so nothing is sent twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.accounting import count
from tests.chaos.scenario import tenant, trigger_all
from tests.chaos.stack import chaos_stack

DELIVERIES = 50
#: A lease far shorter than the batch: without renewal the sweeper takes the batch mid-way.
SHORT_LEASE = {"DISPATCHER_SEND_LEASE": "2", "DISPATCHER_SEND_TIMEOUT": "10"}
pytestmark = [
    pytest.mark.slow,
    pytest.mark.worker,
    pytest.mark.usefixtures("postgres_url", "redis_url"),
]


@pytest.mark.timeout(240)
def test_a_trickling_provider_outliving_the_lease_sends_each_delivery_once(
    tmp_path: Path, say: Callable[[str], None]
) -> None:
    with chaos_stack(tmp_path, SHORT_LEASE) as stack:
        # About 150 bytes a byte every 25 ms: each answer takes about 4 s, each read 25 ms.
        org = tenant(
            stack, DELIVERIES, names=("primary",), behaviours={"primary": {"trickle_ms": 25}}
        )
        trigger_all(org, per_event=DELIVERIES)
        stack.wait_until_terminal(org.organisation_id, DELIVERIES, timeout=150)
        figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
        say(f"trickling provider: {figures.line()}")
    assert figures.lost == 0
    assert figures.duplicates == 0
    assert figures.failed_but_accepted == 0

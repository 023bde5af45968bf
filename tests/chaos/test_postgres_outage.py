"""PostgreSQL unreachable for some seconds in the middle of a run.

What a producer gets then: ``trigger`` raises SQLAlchemy's ``sqlalchemy.exc.OperationalError``
(psycopg's "connection refused" underneath) before anything is written or enqueued; the message
names the server's address, never the password. Workers retry their batches with backoff, keep
the outcome of sends already made until it can be written, and carry on when the database is back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from dispatcher import trigger
from tests.chaos.accounting import count
from tests.chaos.scenario import WORKFLOW, tenant, trigger_all
from tests.chaos.stack import DATABASE_PASSWORD, chaos_stack

DELIVERIES = 4_000
OUTAGE_SECONDS = 6.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.worker,
    pytest.mark.usefixtures("postgres_url", "redis_url"),
]


@pytest.mark.timeout(600)
def test_database_outage_fails_producers_clearly_and_workers_lose_and_repeat_nothing(
    tmp_path: Path, say: Callable[[str], None]
) -> None:
    with chaos_stack(tmp_path) as stack:
        org = tenant(
            stack, DELIVERIES, names=("primary",), behaviours={"primary": {"latency_ms": 100}}
        )
        first, second = org.external_ids[: DELIVERIES // 2], org.external_ids[DELIVERIES // 2 :]
        trigger_all(org, first, label="before")
        deadline = time.monotonic() + 300
        counts = stack.status_counts(org.organisation_id)
        while counts.get("sent", 0) < len(first) * 0.2 or not counts.get("sending"):
            assert time.monotonic() < deadline, counts
            time.sleep(0.05)
            counts = stack.status_counts(org.organisation_id)
        with stack.pg_proxy.outage():
            started = time.monotonic()
            with pytest.raises(sa.exc.OperationalError) as caught:
                trigger(org.organisation_id, WORKFLOW, second[0], {"code": "outage"})
            producer_seconds = time.monotonic() - started
            at_cut = stack.status_counts(org.organisation_id)
            time.sleep(OUTAGE_SECONDS)
        say(
            f"PostgreSQL cut for {OUTAGE_SECONDS:g}s with {at_cut.get('sending', 0)} sends in "
            f"flight; trigger raised {type(caught.value).__module__}.{type(caught.value).__name__} "
            f"after {producer_seconds:.2f}s: {str(caught.value).splitlines()[0]}"
        )
        trigger_all(org, second, label="after")
        stack.wait_until_terminal(org.organisation_id, DELIVERIES, timeout=300)
        figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
        log = stack.logs()
        waited = log.count("outcomes; retrying in")
        say(f"postgres outage: {waited} write-backs waited for the database; {figures.line()}")
    assert "Connection refused" in str(caught.value)
    assert DATABASE_PASSWORD not in str(caught.value)
    assert figures.deliveries == DELIVERIES
    assert figures.lost == 0
    assert figures.duplicates == 0
    assert figures.failed_but_accepted == 0
    assert "database unavailable" in log

"""A primary provider that fails every request, and one that rate-limits with 429."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from dispatcher.dev.fakeserver import Recorded
from tests.chaos.accounting import count
from tests.chaos.scenario import Tenant, tenant, trigger_all
from tests.chaos.stack import Stack, chaos_stack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.worker,
    pytest.mark.usefixtures("postgres_url", "redis_url"),
]

PROCESSES = 2
#: Sends in flight per integration in one worker process.
CONCURRENCY = 4
THRESHOLD = 5
COOLDOWN = 3.0
CIRCUIT_SETTINGS = {
    "DISPATCHER_SEND_CONCURRENCY_PER_INTEGRATION": str(CONCURRENCY),
    "DISPATCHER_CIRCUIT_FAILURE_THRESHOLD": str(THRESHOLD),
    "DISPATCHER_CIRCUIT_COOLDOWN": str(COOLDOWN),
    "DISPATCHER_DELIVERY_BATCH_SIZE": "20",
}


def requests_to(stack: Stack, path: str) -> list[Recorded]:
    return [item for item in list(stack.fake.state.requests) if item.path == path]


def integration_status(stack: Stack, integration_id: uuid.UUID) -> str:
    with stack.engine.connect() as connection:
        return str(
            connection.execute(
                sa.text("SELECT status FROM integrations WHERE id = :id"), {"id": integration_id}
            ).scalar_one()
        )


def sent_through(stack: Stack, org: Tenant, label: str) -> dict[str, int]:
    """Integration name -> deliveries sent through it, of the triggers labelled ``label``."""
    names = {str(value): key for key, value in org.wiring.integrations.items()}
    with stack.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT d.integration_id, count(*) FROM deliveries d "
                "JOIN notifications n ON n.id = d.notification_id "
                "WHERE d.organisation_id = :org AND d.status = 'sent' "
                "AND n.transaction_id LIKE :label GROUP BY d.integration_id"
            ),
            {"org": org.organisation_id, "label": f"{label}-%"},
        ).all()
    return {names.get(str(row[0]), str(row[0])): int(row[1]) for row in rows}


def failures_before_open(primary: list[Recorded], secondary: list[Recorded]) -> tuple[int, int]:
    """(requests the primary had received when the first delivery passed it over, deliveries
    that passed it over): a delivery sent to the secondary without ever reaching the primary
    found the primary's circuit open."""
    tried = {item.delivery_id for item in primary}
    skipped = [item for item in secondary if item.delivery_id not in tried]
    if not skipped:
        return len(primary), 0
    opened_at = min(item.at for item in skipped)
    return sum(1 for item in primary if item.at < opened_at), len(skipped)


@dataclass(frozen=True)
class Phase:
    failure: str
    #: Integration name -> deliveries sent through it, while failing and after recovery.
    during: dict[str, int]
    after: dict[str, int]
    primary_requests: int
    before_open: int
    passed_over: int
    status_during: str
    status_after: str

    def line(self) -> str:
        return (
            f"primary answering {self.failure}: sent through {self.during}; primary requests "
            f"{self.primary_requests}, {self.before_open} of them before the circuit turned "
            f"deliveries away ({self.passed_over} deliveries passed it over); integration "
            f"status {self.status_during}, after recovery {self.status_after}, then sent "
            f"through {self.after}"
        )


def fail_then_recover(
    stack: Stack, org: Tenant, failure: str, during: list[str], after: list[str], done: int
) -> Phase:
    """The primary answers ``failure`` to every request while ``during`` are notified, then
    recovers; after the cool-down, the next send to it is a probe that succeeds."""
    primary_id = org.wiring.integrations["primary"]
    stack.fake.configure(org.path("primary"), default=failure)
    since = time.time()
    trigger_all(org, during, label=f"{failure}-during")
    stack.wait_until_terminal(org.organisation_id, done + len(during), timeout=240)
    primary = [item for item in requests_to(stack, org.path("primary")) if item.at >= since]
    secondary = [item for item in requests_to(stack, org.path("secondary")) if item.at >= since]
    status_during = integration_status(stack, primary_id)
    stack.fake.configure(org.path("primary"), default="ok")
    time.sleep(COOLDOWN + 0.5)
    trigger_all(org, after, label=f"{failure}-after")
    stack.wait_until_terminal(org.organisation_id, done + len(during) + len(after), timeout=120)
    before_open, passed_over = failures_before_open(primary, secondary)
    return Phase(
        failure=failure,
        during=sent_through(stack, org, f"{failure}-during"),
        after=sent_through(stack, org, f"{failure}-after"),
        primary_requests=len(primary),
        before_open=before_open,
        passed_over=passed_over,
        status_during=status_during,
        status_after=integration_status(stack, primary_id),
    )


@pytest.mark.timeout(600)
def test_a_failing_primary_opens_its_circuit_everything_goes_out_through_the_fallback_and_it_closes_on_recovery(
    tmp_path: Path, say: Callable[[str], None]
) -> None:
    failures, deliveries, probes = ("500", "timeout", "401"), 120, 20
    with chaos_stack(tmp_path, CIRCUIT_SETTINGS, concurrency=PROCESSES) as stack:
        org = tenant(stack, len(failures) * (deliveries + probes))
        recipients = iter(org.external_ids)
        phases: list[Phase] = []
        for failure in failures:
            during = [next(recipients) for _ in range(deliveries)]
            after = [next(recipients) for _ in range(probes)]
            done = len(phases) * (deliveries + probes)
            phases.append(fail_then_recover(stack, org, failure, during, after, done))
        figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
    for phase in phases:
        say(phase.line())
    say(f"failing primary: {figures.line()}")
    assert figures.lost == 0
    assert figures.duplicates == 0
    for phase in phases:
        assert phase.during == {"secondary": deliveries}, phase.failure
        assert phase.passed_over > 0, phase.failure
        # Requests already in flight when the threshold was reached: one wave per process.
        assert phase.before_open <= THRESHOLD + PROCESSES * CONCURRENCY - 1, phase.failure
        assert phase.status_during == "error", phase.failure
        assert phase.status_after == "active", phase.failure
        assert phase.after.get("primary", 0) > 0, phase.failure


RETRY_AFTER = 3.0
#: How long the provider rate-limits: long enough for a few Retry-After periods.
LIMITED_FOR = 2 * RETRY_AFTER
RATE_SETTINGS = {
    "DISPATCHER_SEND_CONCURRENCY_PER_INTEGRATION": "3",
    # Shorter than Retry-After on purpose: the provider's word must win over the breaker's.
    "DISPATCHER_CIRCUIT_COOLDOWN": "2",
    # Each delivery meets at most one 429 per Retry-After period while the limit lasts.
    "DISPATCHER_MAX_ATTEMPTS_PER_INTEGRATION": str(int(LIMITED_FOR / RETRY_AFTER) + 3),
    "DISPATCHER_DELIVERY_BATCH_SIZE": "20",
}


def busiest_window(times: list[float], width: float) -> int:
    """The most requests that arrived within any ``width`` seconds."""
    ordered = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= width:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.timeout(600)
def test_a_provider_answering_429_is_given_the_pace_its_retry_after_asks_for(
    tmp_path: Path, say: Callable[[str], None]
) -> None:
    deliveries = 200
    concurrency = int(RATE_SETTINGS["DISPATCHER_SEND_CONCURRENCY_PER_INTEGRATION"])
    with chaos_stack(tmp_path, RATE_SETTINGS, concurrency=PROCESSES) as stack:
        # One integration only: nothing to fall back to, the dispatcher has to slow down.
        org = tenant(
            stack,
            deliveries,
            names=("primary",),
            behaviours={"primary": {"default": "429", "retry_after": RETRY_AFTER}},
        )
        trigger_all(org, per_event=50, label="limited")
        deadline = time.monotonic() + 60
        while not requests_to(stack, org.path("primary")):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(LIMITED_FOR)
        stack.fake.configure(org.path("primary"), default="ok")
        stack.wait_until_terminal(org.organisation_id, deliveries, timeout=240)
        requests = requests_to(stack, org.path("primary"))
        figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
    limited = [item.at for item in requests if item.answer == "429"]
    period = [item.at for item in requests if item.at <= max(limited)]
    allowed = PROCESSES * concurrency
    busiest = busiest_window(period, RETRY_AFTER)
    say(
        f"429 with Retry-After {RETRY_AFTER:g}s for {LIMITED_FOR:g}s: {len(period)} requests in "
        f"{max(limited) - min(period):.1f}s, at most {busiest} within any {RETRY_AFTER:g}s "
        f"(allowed: one wave of {PROCESSES} processes x {concurrency} in flight = {allowed}); "
        f"{len(limited)} answered 429"
    )
    say(f"429 with Retry-After: {figures.line()}")
    assert busiest <= allowed
    assert figures.lost == 0
    assert figures.duplicates == 0

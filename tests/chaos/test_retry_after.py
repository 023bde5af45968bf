"""A primary that answers 429 to some requests (the others succeed), with ``Retry-After`` in each
form a provider may send: a hold (up to the cap) is honoured by every worker although sends to
the primary that were in flight succeed after it, the deliveries go out through the secondary, or
wait for the hold's end when there is none; no form loses, doubles or fails a delivery."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from dispatcher.dev.fakeserver import Recorded
from dispatcher.sending.circuit import HOLD_PREFIX
from tests.chaos.accounting import count
from tests.chaos.scenario import Tenant, tenant, trigger_all
from tests.chaos.stack import Stack, chaos_stack
from tests.chaos.test_provider_failures import integration_status, requests_to, sent_through

pytestmark = [
    pytest.mark.slow,
    pytest.mark.worker,
    pytest.mark.usefixtures("postgres_url", "redis_url"),
]

PROCESSES = 2
#: Sends in flight per integration in one worker process.
CONCURRENCY = 4
HOUR = 3600
#: The primary's answers take this long, so that sends are in flight, and succeed, after its
#: first 429 was answered: the case where a success used to lift the hold.
LATENCY_MS = 300
#: The primary's answers, in order; then "ok" for ever. Rate limits hit only some requests.
SCRIPT = ["ok"] * 6 + ["429", "ok", "ok", "429"]
SETTINGS = {
    "DISPATCHER_SEND_CONCURRENCY_PER_INTEGRATION": str(CONCURRENCY),
    "DISPATCHER_DELIVERY_BATCH_SIZE": "20",
    "DISPATCHER_RETRY_AFTER_CAP": str(HOUR),
    # Five 429s in a row never happen here; a 500 would not either.
    "DISPATCHER_CIRCUIT_FAILURE_THRESHOLD": "50",
}
#: Requests to the primary that may still arrive after its first 429 was answered: those of
#: another worker process's batch that started before it read the hold again (every 0.05 s,
#: sooner than one answer of the primary's takes), one per send slot.
LATE_ALLOWED = PROCESSES * CONCURRENCY

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc850(when: datetime) -> str:
    day, month = DAYS[when.weekday()], MONTHS[when.month - 1]
    return f"{day}, {when.day:02d}-{month}-{when.year % 100:02d} {when:%H:%M:%S} GMT"


def asctime(when: datetime) -> str:
    day, month = DAYS[when.weekday()][:3], MONTHS[when.month - 1]
    return f"{day} {month} {when.day:2d} {when:%H:%M:%S} {when.year}"


def forms() -> dict[str, tuple[str, bool, bool]]:
    """Form -> (the header, whether it holds the primary for the run, whether beyond the cap);
    the dates an hour from now, when the test starts (not when the module was collected)."""
    in_an_hour = datetime.now(UTC) + timedelta(seconds=HOUR)
    return {
        "delta 3600": (str(HOUR), True, False),
        "zero": ("0", False, False),
        "negative": ("-5", False, False),
        "huge digits": ("9" * 400, True, True),
        "float": ("1.5", False, False),
        "exponent": ("1e400", False, False),
        "IMF-fixdate in an hour": (format_datetime(in_an_hour, usegmt=True), True, False),
        "IMF-fixdate past": ("Sun, 06 Nov 1994 08:49:37 GMT", False, False),
        "RFC 850 in an hour": (rfc850(in_an_hour), True, False),
        "asctime in an hour": (asctime(in_an_hour), True, False),
        "garbage": ("soon, probably", False, False),
        "empty": ("", False, False),
    }


@dataclass(frozen=True)
class Run:
    form: str
    before: int
    in_flight: int
    late: int
    sent_through: dict[str, int]
    hold_left: float | None
    status: str

    def line(self) -> str:
        hold = f"{self.hold_left:.0f}s" if self.hold_left is not None else "none"
        return (
            f"Retry-After {self.form!r}: primary requests {self.before} before its first 429, "
            f"{self.in_flight} in flight when it was answered, {self.late} after; sent through "
            f"{self.sent_through}; hold left {hold}; primary status {self.status}"
        )


def split_at_first_429(requests: list[Recorded]) -> tuple[int, int, int]:
    """(requests before the first 429, those that arrived while it was being answered, those
    that arrived after it was answered)."""
    limited = [item.at for item in requests if item.answer == "429"]
    assert limited, "the primary answered no 429"
    first = min(limited)
    answered = first + LATENCY_MS / 1000
    before = sum(1 for item in requests if item.at < first)
    late = sum(1 for item in requests if item.at > answered)
    return before, len(requests) - before - late - 1, late


def hold_left(stack: Stack, integration_id: uuid.UUID) -> float | None:
    client = stack.redis()
    try:
        milliseconds = int(client.pttl(HOLD_PREFIX + str(integration_id)))
    finally:
        client.close()
    return milliseconds / 1000 if milliseconds > 0 else None


def own_requests(stack: Stack, org: Tenant) -> list[Recorded]:
    paths = set(org.wiring.paths.values())
    return [item for item in list(stack.fake.state.requests) if item.path in paths]


def limited_tenant(stack: Stack, subscribers: int, header: str, names: tuple[str, ...]) -> Tenant:
    behaviour = {"script": SCRIPT, "latency_ms": LATENCY_MS, "retry_after": header}
    return tenant(stack, subscribers, names=names, behaviours={"primary": behaviour})


@pytest.mark.timeout(600)
def test_every_retry_after_form_is_bounded_and_a_hold_of_one_hour_is_honoured_with_fallback(
    tmp_path: Path, say: Callable[[str], None]
) -> None:
    deliveries = 40
    cases = forms()
    with chaos_stack(tmp_path, SETTINGS, concurrency=PROCESSES) as stack:
        orgs = {
            form: limited_tenant(stack, deliveries, header, ("primary", "secondary"))
            for form, (header, _, _) in cases.items()
        }
        for form, org in orgs.items():
            trigger_all(org, per_event=10, label=form.replace(" ", "-"))
        for org in orgs.values():
            stack.wait_until_terminal(org.organisation_id, deliveries, timeout=240)
        runs: list[Run] = []
        for form, org in orgs.items():
            primary_id = org.wiring.integrations["primary"]
            before, in_flight, late = split_at_first_429(requests_to(stack, org.path("primary")))
            label = form.replace(" ", "-")
            held, status = hold_left(stack, primary_id), integration_status(stack, primary_id)
            runs.append(
                Run(form, before, in_flight, late, sent_through(stack, org, label), held, status)
            )
        figures = {
            form: count(stack.engine, [org.organisation_id], own_requests(stack, org))
            for form, org in orgs.items()
        }
    for run in runs:
        say(run.line())
        say(f"  {run.form!r}: {figures[run.form].line()}")
    for run in runs:
        _, holds, beyond_cap = cases[run.form]
        assert figures[run.form].lost == 0, run.form
        assert figures[run.form].duplicates == 0, run.form
        assert figures[run.form].by_status == {"sent": deliveries}, run.form
        if holds:
            # Held for the hour (up to the cap): nothing reached the primary after its 429 but
            # what was in flight, and the rest went through the secondary.
            assert run.late <= LATE_ALLOWED, run.form
            assert run.hold_left is not None and run.hold_left > HOUR - 300, run.form
            reached_primary = run.before + run.in_flight + 1 + run.late
            assert run.sent_through.get("secondary", 0) >= deliveries - reached_primary, run.form
            assert run.status == ("error" if beyond_cap else "active"), run.form
        else:
            # Malformed or past: no wait of the provider's, plain backoff on the primary.
            assert run.hold_left is None, run.form
            assert run.status == "active", run.form


def parked(stack: Stack, organisation_id: uuid.UUID) -> dict[str, int]:
    """Deliveries by status, ``retrying`` split by whether they wait beyond the next 50 minutes."""
    with stack.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT status, next_attempt_at > now() + interval '50 minutes', count(*) "
                "FROM deliveries WHERE organisation_id = :org GROUP BY 1, 2"
            ),
            {"org": organisation_id},
        ).all()
    return {
        f"{status}{' (for the hold)' if far else ''}": int(number) for status, far, number in rows
    }


@pytest.mark.timeout(300)
def test_with_no_other_integration_the_deliveries_wait_for_the_hold_and_the_primary_gets_nothing(
    tmp_path: Path, say: Callable[[str], None]
) -> None:
    deliveries = 60
    settings = {**SETTINGS, "DISPATCHER_SWEEP_INTERVAL": "0.5"}
    with chaos_stack(tmp_path, settings, concurrency=PROCESSES) as stack:
        org = limited_tenant(stack, deliveries, str(HOUR), ("primary",))
        trigger_all(org, per_event=10, label="alone")
        deadline = time.monotonic() + 120
        while True:
            counts = parked(stack, org.organisation_id)
            if counts.get("sent", 0) + counts.get("retrying (for the hold)", 0) == deliveries:
                break
            assert time.monotonic() < deadline, counts
            time.sleep(0.25)
        requests = requests_to(stack, org.path("primary"))
        # Several sweeps later: still nothing for the primary, nothing failed.
        time.sleep(3.0)
        later = requests_to(stack, org.path("primary"))
        counts_later = parked(stack, org.organisation_id)
        before, in_flight, late = split_at_first_429(later)
        left = hold_left(stack, org.wiring.integrations["primary"])
        accepted = [item.delivery_id for item in later if item.answer == "ok"]
    hold = f"{left:.0f}s" if left is not None else "none"
    say(
        f"no secondary, Retry-After {HOUR}: deliveries {counts_later}; primary requests "
        f"{before} before its first 429, {in_flight} in flight then, {late} after, "
        f"{len(later) - len(requests)} in the 3 s after the deliveries settled; hold left {hold}"
    )
    assert len(later) == len(requests)
    assert late <= LATE_ALLOWED
    assert counts_later == counts
    assert set(counts_later) <= {"sent", "retrying (for the hold)"}
    assert counts_later.get("sent", 0) == len(accepted) == len(set(accepted))
    assert left is not None and left > HOUR - 300

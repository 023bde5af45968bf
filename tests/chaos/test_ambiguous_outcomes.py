"""A provider that sent the message and then lost its answer: resend (at least once) or record
``unknown`` (at most once), per integration.

The fake provider reads each request, records the message as sent, and then hangs up, resets
the connection or stalls past the send timeout, for the first request of each delivery (then it
answers) or for every request. Each organisation has one integration, so nothing falls back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.chaos.accounting import Figures, count
from tests.chaos.scenario import Tenant, tenant, trigger_all
from tests.chaos.stack import Stack, chaos_stack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.worker,
    pytest.mark.usefixtures("postgres_url", "redis_url"),
]

DELIVERIES = 30
MAX_ATTEMPTS = 3
SETTINGS = {
    "DISPATCHER_MAX_ATTEMPTS_PER_INTEGRATION": str(MAX_ATTEMPTS),
    # Every request of an always-failing provider reaches it: no circuit turns them away.
    "DISPATCHER_CIRCUIT_FAILURE_THRESHOLD": "100000",
    "DISPATCHER_DELIVERY_BATCH_SIZE": "10",
}


@dataclass(frozen=True)
class Case:
    name: str
    behaviour: dict[str, Any]
    on_ambiguous: str
    status: str
    #: Requests the provider acted on (sent the message) per delivery.
    sends: int
    requests: int


CASES = [
    Case("first answer dropped, resend", {"first_answer": "drop"}, "resend", "sent", 2, 2),
    Case("first answer dropped, record_unknown", {"first_answer": "drop"}, "record_unknown",
         "unknown", 1, 1),
    Case("first answer reset, resend", {"first_answer": "reset"}, "resend", "sent", 2, 2),
    Case("first answer reset, record_unknown", {"first_answer": "reset"}, "record_unknown",
         "unknown", 1, 1),
    Case("first answer stalled, resend", {"first_answer": "stall"}, "resend", "sent", 2, 2),
    Case("first answer stalled, record_unknown", {"first_answer": "stall"}, "record_unknown",
         "unknown", 1, 1),
    # The bound of at least once: every attempt the integration has, then the delivery fails.
    Case("every answer dropped, resend", {"default": "drop"}, "resend", "failed",
         MAX_ATTEMPTS, MAX_ATTEMPTS),
    Case("every answer dropped, record_unknown", {"default": "drop"}, "record_unknown",
         "unknown", 1, 1),
    # The provider knows the idempotency key: the resend is answered without a second send.
    Case("first answer dropped, resend, idempotency key", {"first_answer": "drop",
         "idempotent": True}, "resend", "sent", 1, 2),
]  # fmt: skip


def attempt_outcomes(stack: Stack, org: Tenant) -> dict[str, int]:
    with stack.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT outcome, count(*) FROM delivery_attempts WHERE organisation_id = :org "
                "GROUP BY outcome"
            ),
            {"org": org.organisation_id},
        ).all()
    return {str(outcome): int(number) for outcome, number in rows}


@pytest.mark.timeout(600)
def test_lost_answers_are_resent_at_least_once_or_recorded_unknown_at_most_once(
    tmp_path: Path, say: Callable[[str], None]
) -> None:
    with chaos_stack(tmp_path, SETTINGS, concurrency=2) as stack:
        orgs = [
            tenant(
                stack, DELIVERIES, names=("primary",),
                behaviours={"primary": case.behaviour},
                settings={"primary": {"on_ambiguous": case.on_ambiguous}},
            )
            for case in CASES
        ]  # fmt: skip
        for org in orgs:
            trigger_all(org, per_event=DELIVERIES, label="ambiguous")
        for org in orgs:
            stack.wait_until_terminal(org.organisation_id, DELIVERIES, timeout=240)
        requests = list(stack.fake.state.requests)
        results: list[tuple[Case, Figures, dict[str, int]]] = [
            (case, count(stack.engine, [org.organisation_id], requests, expect_sent=False),
             attempt_outcomes(stack, org))
            for case, org in zip(CASES, orgs, strict=True)
        ]  # fmt: skip
    for case, figures, outcomes in results:
        say(
            f"{case.name}: by_status={figures.by_status} requests={figures.requests} "
            f"by_answer={figures.by_answer} sent_by_provider={figures.accepted} "
            f"duplicated={figures.duplicates} extra_sends={figures.extra_sends} "
            f"attempts={outcomes}"
        )
    for case, figures, outcomes in results:
        assert figures.by_status == {case.status: DELIVERIES}, case.name
        assert figures.requests == case.requests * DELIVERIES, case.name
        assert figures.accepted == DELIVERIES, case.name
        assert figures.extra_sends == (case.sends - 1) * DELIVERIES, case.name
        assert figures.duplicates == (DELIVERIES if case.sends > 1 else 0), case.name
        assert figures.attempts_mismatch == 0, case.name
        lost_answers = sum(
            number for answer, number in figures.by_answer.items() if answer != "ok"
            and answer != "replayed"
        )  # fmt: skip
        assert outcomes.get("ambiguous", 0) == lost_answers, case.name

"""The batch sender on its own: jobs in, outcomes out, with the in-memory fake provider.

No database and no network: each case is one rule of "how a delivery is sent" (README): retry on
the same integration, fall back on an integration error, stop on a recipient error, pass over
open circuits and burned or exhausted integrations, give up at the delivery's budget.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from pydantic import SecretStr

from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.runtime.http import SendingRuntime
from dispatcher.sending.circuit import CircuitView, MemoryCircuitStore
from dispatcher.sending.execute import BatchSender, Outcome, Policy
from dispatcher.sending.integrations import Candidate
from dispatcher.sending.plan import Job
from models import AttemptOutcome, ChannelType, DeliveryStatus, IntegrationStatus, OnAmbiguous
from providers.base import Message, Recipient
from providers.fake import FakeCredentials, FakeProvider
from tests.dispatcher.sending.support import policy

POLICY = replace(
    policy(), max_attempts_per_delivery=12, retry_base_delay=2.0, retry_max_delay=300.0
)


def integration_id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, name)


def candidate(
    name: str,
    script: Sequence[str] = (),
    *,
    unreadable: bool = False,
    settings: dict[str, Any] | None = None,
) -> Candidate:
    """The fake provider answers from ``script`` (one queue per distinct script per process)."""
    return Candidate(
        integration_id=integration_id(name),
        provider="fake",
        credentials=FakeCredentials(api_key=SecretStr(f"key-{name}")),
        settings={"script": list(script), **(settings or {})},
        status=IntegrationStatus.ACTIVE,
        unreadable=unreadable,
    )


def job(*candidates: Candidate, attempts: int = 0, **fields: Any) -> Job:
    delivery_id = uuid.uuid4()
    return Job(
        delivery_id=delivery_id,
        organisation_id=uuid.uuid4(),
        notification_id=uuid.uuid4(),
        channel=ChannelType.EMAIL,
        attempts=attempts,
        message=Message(
            delivery_id=str(delivery_id),
            channel="email",
            to=Recipient(email="ada@example.com"),
            subject="s",
            body="b",
        ),
        candidates=list(candidates),
        **fields,
    )


class Circuit(MemoryCircuitStore):
    """The circuit store of one process (opens after ``threshold`` failures), and the batch's
    view of it, read when the batch starts."""

    def __init__(
        self,
        open_ids: frozenset[uuid.UUID] = frozenset(),
        threshold: int = 100,
        held: dict[uuid.UUID, float] | None = None,
    ) -> None:
        super().__init__(threshold=threshold, cooldown=30.0)
        for key in open_ids:
            self._open_until[str(key)] = time.monotonic() + 30.0
        for key, seconds in (held or {}).items():
            self.hold(str(key), seconds)
        self.view = CircuitView(self, {*open_ids, *(held or {})})


@pytest.fixture
def runtime() -> Iterator[SendingRuntime]:
    runtime = SendingRuntime(timeout=5.0, max_connections=10, url_allowlist=())
    yield runtime
    runtime.close()


def send(
    runtime: SendingRuntime,
    jobs: list[Job],
    circuit: Circuit | None = None,
    rules: Policy = POLICY,
) -> list[Outcome]:
    sender = BatchSender(runtime, rules, (circuit or Circuit()).view)
    outcomes = runtime.run(sender.send_all(jobs))
    return [outcomes[item.delivery_id] for item in jobs]


def tried(outcome: Outcome) -> list[tuple[uuid.UUID, AttemptOutcome]]:
    return [(attempt.integration_id, attempt.outcome) for attempt in outcome.attempts]


def test_sent_by_the_first_candidate(runtime: SendingRuntime) -> None:
    [outcome] = send(runtime, [job(candidate("a"), candidate("b"))])
    assert outcome.status is DeliveryStatus.SENT
    assert outcome.integration_id == integration_id("a")
    assert outcome.provider_message_id is not None
    assert tried(outcome) == [(integration_id("a"), AttemptOutcome.SENT)]
    provider = runtime.provider("fake")
    assert isinstance(provider, FakeProvider) and len(provider.sent) == 1


def test_a_retryable_failure_retries_the_same_integration_later(runtime: SendingRuntime) -> None:
    [outcome] = send(runtime, [job(candidate("a", ["retryable"]), candidate("b"))])
    assert outcome.status is DeliveryStatus.RETRYING
    assert outcome.integration_id == integration_id("a")
    assert outcome.delay is not None and 0.0 <= outcome.delay <= 2.0  # base 2 s, full jitter
    assert tried(outcome) == [(integration_id("a"), AttemptOutcome.RETRYABLE)]


def test_an_ambiguous_failure_is_resent_by_default(runtime: SendingRuntime) -> None:
    [outcome] = send(runtime, [job(candidate("lost-a", ["ambiguous"]), candidate("b"))])
    assert outcome.status is DeliveryStatus.RETRYING
    assert outcome.integration_id == integration_id("lost-a")
    assert tried(outcome) == [(integration_id("lost-a"), AttemptOutcome.AMBIGUOUS)]
    assert outcome.attempts[0].error_class == "AmbiguousError"


RECORD_UNKNOWN = {"on_ambiguous": "record_unknown"}


@pytest.mark.parametrize(
    ("settings", "channel_defaults", "status"),
    [
        (RECORD_UNKNOWN, {}, DeliveryStatus.UNKNOWN),
        ({"on_ambiguous": "resend"}, {}, DeliveryStatus.RETRYING),
        ({}, {ChannelType.EMAIL: OnAmbiguous.RECORD_UNKNOWN}, DeliveryStatus.UNKNOWN),
        ({}, {ChannelType.SMS: OnAmbiguous.RECORD_UNKNOWN}, DeliveryStatus.RETRYING),
        # The integration's own setting wins over its channel's default.
        (
            {"on_ambiguous": "resend"},
            {ChannelType.EMAIL: OnAmbiguous.RECORD_UNKNOWN},
            DeliveryStatus.RETRYING,
        ),
    ],
)
def test_on_ambiguous_is_the_integrations_else_its_channels_default(
    runtime: SendingRuntime,
    settings: dict[str, str],
    channel_defaults: dict[ChannelType, OnAmbiguous],
    status: DeliveryStatus,
) -> None:
    lost = candidate(f"lost-{uuid.uuid4()}", ["ambiguous"], settings=settings)
    rules = replace(POLICY, on_ambiguous_by_channel=channel_defaults)
    [outcome] = send(runtime, [job(lost, candidate("b"))], rules=rules)
    assert outcome.status is status
    assert tried(outcome) == [(lost.integration_id, AttemptOutcome.AMBIGUOUS)]


def test_recorded_unknown_is_neither_resent_nor_sent_elsewhere(runtime: SendingRuntime) -> None:
    item = job(candidate("unknown-a", ["ambiguous"], settings=RECORD_UNKNOWN), candidate("b"))
    [outcome] = send(runtime, [item])
    assert outcome.status is DeliveryStatus.UNKNOWN
    assert outcome.reason == (
        "fake: scripted lost answer (not resent: on_ambiguous is record_unknown)"
    )
    assert outcome.delay is None
    provider = runtime.provider("fake")
    assert isinstance(provider, FakeProvider)
    assert [message.delivery_id for message in provider.sent] == [str(item.delivery_id)]


def test_a_failure_before_sending_is_retried_also_where_ambiguity_is_recorded(
    runtime: SendingRuntime,
) -> None:
    item = job(candidate("unsent-a", ["retryable"], settings=RECORD_UNKNOWN), candidate("b"))
    [outcome] = send(runtime, [item])
    assert outcome.status is DeliveryStatus.RETRYING
    assert tried(outcome) == [(integration_id("unsent-a"), AttemptOutcome.RETRYABLE)]


def test_an_on_ambiguous_setting_that_does_not_fit_is_an_integration_error(
    runtime: SendingRuntime,
) -> None:
    item = job(candidate("typo-a", settings={"on_ambiguous": "never"}), candidate("b"))
    [outcome] = send(runtime, [item])
    assert outcome.status is DeliveryStatus.SENT
    assert outcome.integration_id == integration_id("b")
    failed = outcome.attempts[0]
    assert failed.outcome is AttemptOutcome.INTEGRATION_ERROR
    assert failed.error is not None
    assert failed.error.startswith("stored settings do not fit provider 'fake': on_ambiguous: ")


def test_an_integration_error_falls_back_at_once(runtime: SendingRuntime) -> None:
    [outcome] = send(runtime, [job(candidate("a", ["integration"]), candidate("b"))])
    assert outcome.status is DeliveryStatus.SENT
    assert outcome.integration_id == integration_id("b")
    assert tried(outcome) == [
        (integration_id("a"), AttemptOutcome.INTEGRATION_ERROR),
        (integration_id("b"), AttemptOutcome.SENT),
    ]


def test_a_recipient_error_fails_without_burning_the_others(runtime: SendingRuntime) -> None:
    [outcome] = send(runtime, [job(candidate("a", ["recipient"]), candidate("b"))])
    assert outcome.status is DeliveryStatus.FAILED
    assert outcome.reason == "fake: scripted invalid recipient"
    assert tried(outcome) == [(integration_id("a"), AttemptOutcome.RECIPIENT_ERROR)]


def test_every_integration_failing_fails_the_delivery(runtime: SendingRuntime) -> None:
    [outcome] = send(
        runtime, [job(candidate("a", ["integration"]), candidate("b", ["integration"] * 2))]
    )
    assert outcome.status is DeliveryStatus.FAILED
    assert outcome.reason == "fake: scripted bad credentials"
    assert len(outcome.attempts) == 2


@pytest.mark.parametrize(
    ("job_fields", "expected_integration"),
    [
        ({"burned": {integration_id("a")}}, "b"),
        ({"attempts_by_integration": {integration_id("a"): 3}}, "b"),  # its retry budget is used
        ({"attempts_by_integration": {integration_id("a"): 2}}, "a"),
    ],
)
def test_burned_and_exhausted_integrations_are_passed_over(
    runtime: SendingRuntime, job_fields: dict[str, Any], expected_integration: str
) -> None:
    [outcome] = send(runtime, [job(candidate("a"), candidate("b"), **job_fields)])
    assert outcome.status is DeliveryStatus.SENT
    assert outcome.integration_id == integration_id(expected_integration)


def test_the_last_retry_on_an_integration_falls_back(runtime: SendingRuntime) -> None:
    item = job(
        candidate("a", ["retryable"]),
        candidate("b"),
        attempts_by_integration={integration_id("a"): 2},
        attempts=2,
    )
    [outcome] = send(runtime, [item])
    assert outcome.status is DeliveryStatus.SENT
    assert outcome.integration_id == integration_id("b")


def test_the_delivery_budget_ends_the_retries(runtime: SendingRuntime) -> None:
    [outcome] = send(runtime, [job(candidate("a"), attempts=12)])
    assert outcome.status is DeliveryStatus.FAILED
    assert outcome.reason is not None and outcome.reason.startswith("gave up after 12 attempts")
    assert outcome.attempts == []


def test_an_open_circuit_is_passed_over(runtime: SendingRuntime) -> None:
    circuit = Circuit(open_ids=frozenset({integration_id("a")}))
    [outcome] = send(runtime, [job(candidate("a"), candidate("b"))], circuit)
    assert outcome.integration_id == integration_id("b")
    assert [a.integration_id for a in outcome.attempts] == [integration_id("b")]


@pytest.mark.parametrize(
    ("open_ids", "unreadable", "reason"),
    [
        ({integration_id("a")}, False, "every remaining integration's circuit is open"),
        (set(), True, "the integration's credentials cannot be decrypted with the worker's keys"),
    ],
)
def test_nothing_to_try_now_waits_a_cooldown(
    runtime: SendingRuntime, open_ids: set[uuid.UUID], unreadable: bool, reason: str
) -> None:
    circuit = Circuit(open_ids=frozenset(open_ids))
    [outcome] = send(runtime, [job(candidate("a", unreadable=unreadable))], circuit)
    assert (outcome.status, outcome.reason, outcome.delay) == (
        DeliveryStatus.RETRYING,
        reason,
        POLICY.circuit_cooldown,
    )
    assert outcome.attempts == []


def test_failures_open_the_circuit_for_the_rest_of_the_batch(runtime: SendingRuntime) -> None:
    # Five jobs fail on "a" (integration errors) and fall back to "b"; at the threshold of 3 the
    # circuit opens and the later jobs no longer try "a" at all.
    circuit = Circuit(threshold=3)
    failing = candidate("a", ["integration"] * 100)
    jobs = [job(failing, candidate("b")) for _ in range(5)]
    sender = BatchSender(
        runtime,
        replace(POLICY, concurrency_per_integration=1),
        circuit.view,
    )
    outcomes = runtime.run(sender.send_all(jobs))
    assert all(o.status is DeliveryStatus.SENT for o in outcomes.values())
    tried_a = sum(
        1 for o in outcomes.values() for a in o.attempts if a.integration_id == integration_id("a")
    )
    assert tried_a == 3
    assert circuit.view.opened == {integration_id("a")}


def test_a_delivery_no_longer_held_is_not_sent(runtime: SendingRuntime) -> None:
    lost, kept = job(candidate("a")), job(candidate("a"))
    sender = BatchSender(
        runtime, POLICY, Circuit().view, held=lambda delivery_id: delivery_id != lost.delivery_id
    )
    outcomes = runtime.run(sender.send_all([lost, kept]))
    assert outcomes[kept.delivery_id].status is DeliveryStatus.SENT
    assert outcomes[lost.delivery_id].status is DeliveryStatus.RETRYING
    assert outcomes[lost.delivery_id].attempts == []
    provider = runtime.provider("fake")
    assert isinstance(provider, FakeProvider)
    assert [message.delivery_id for message in provider.sent] == [str(kept.delivery_id)]


def test_past_the_send_deadline_nothing_is_sent_and_no_attempt_counted(
    runtime: SendingRuntime,
) -> None:
    late = job(candidate("a"))
    sender = BatchSender(runtime, POLICY, Circuit().view, send_deadline=time.monotonic())
    outcome = runtime.run(sender.send_all([late]))[late.delivery_id]
    assert outcome.status is DeliveryStatus.RETRYING
    assert outcome.delay == 0.0 and outcome.attempts == []
    assert outcome.reason is not None and "deadline" in outcome.reason


@pytest.fixture
def trickling_server() -> Iterator[FakeProviderServer]:
    """Answers a byte every 20 ms: about 3 s for the whole answer, never a read of 20 ms."""
    server = FakeProviderServer().start()
    server.configure("slow", trickle_ms=20)
    yield server
    server.stop()


def test_a_trickled_answer_times_out_as_a_whole(trickling_server: FakeProviderServer) -> None:
    # The local server is on loopback: this runtime's connector lets it through.
    runtime = SendingRuntime(timeout=5.0, max_connections=10, url_allowlist=("127.0.0.1",))
    slow = Candidate(
        integration_id=integration_id("slow"),
        provider="fake_http",
        credentials=FakeCredentials(api_key=SecretStr("key-slow")),
        settings={"url": f"{trickling_server.url}/slow"},
        status=IntegrationStatus.ACTIVE,
    )
    rules = replace(POLICY, url_allowlist=("127.0.0.1",), request_timeout=0.5)
    trickled = job(slow)
    try:
        outcome = runtime.run(BatchSender(runtime, rules, Circuit().view).send_all([trickled]))[
            trickled.delivery_id
        ]
    finally:
        runtime.close()
    assert outcome.status is DeliveryStatus.RETRYING
    [attempt] = outcome.attempts
    # The request had reached the provider: the timeout leaves it ambiguous, resent by default.
    assert attempt.outcome is AttemptOutcome.AMBIGUOUS
    assert attempt.error_class == "AmbiguousError"
    assert attempt.error is not None and "no complete answer within 0.5s" in attempt.error
    assert [item.delivery_id for item in trickling_server.state.requests] == [
        str(trickled.delivery_id)
    ]


@pytest.mark.parametrize("offset", [0, 250, 290, 299, 310, 480, 495])
def test_a_secret_echoed_anywhere_in_an_error_is_masked_before_it_is_cut(offset: int) -> None:
    """The dispatcher masks an error text, then cuts it to what it stores: a secret that crossed
    a provider's own cut (300 characters, once) stayed partly readable."""
    from tests.security.support import Route, ScriptedServer

    secret = "SECRET-echoed-" + "k" * 26  # 40 characters
    body = json.dumps({"error": "x" * offset + secret + " and more"})
    runtime = SendingRuntime(timeout=5.0, max_connections=4, url_allowlist=("127.0.0.1",))
    try:
        with ScriptedServer().running() as server:
            echoing = Candidate(
                integration_id=integration_id("echo"),
                provider="fake_http",
                credentials=FakeCredentials(api_key=SecretStr(secret)),
                settings={"url": server.route("/echo", Route(400, body))},
                status=IntegrationStatus.ACTIVE,
            )
            item = job(echoing)
            rules = replace(POLICY, url_allowlist=("127.0.0.1",))
            outcome = runtime.run(BatchSender(runtime, rules, Circuit().view).send_all([item]))[
                item.delivery_id
            ]
    finally:
        runtime.close()
    [attempt] = outcome.attempts
    assert attempt.error is not None and attempt.error.startswith("HTTP 400: ")
    stored = [attempt.error or "", outcome.reason or ""]
    pieces = {secret[start : start + 6] for start in range(len(secret) - 5)}
    for text in stored:
        assert not any(piece in text for piece in pieces), text


# --- Retry-After holds ---------------------------------------------------------------------------


def a_count(outcomes: dict[uuid.UUID, Outcome], name: str) -> int:
    """Requests the batch made to integration ``name``."""
    return sum(
        1 for o in outcomes.values() for a in o.attempts if a.integration_id == integration_id(name)
    )


def test_a_retry_after_holds_the_integration_and_every_delivery_falls_back_at_once(
    runtime: SendingRuntime,
) -> None:
    circuit = Circuit()
    limited = candidate("a", ["rate_limited"])
    jobs = [job(limited, candidate("b")) for _ in range(5)]
    sender = BatchSender(runtime, replace(POLICY, concurrency_per_integration=1), circuit.view)
    outcomes = runtime.run(sender.send_all(jobs))
    # The delivery that met the 429 too: it is not the message's fault, the next one sends it.
    assert {o.status for o in outcomes.values()} == {DeliveryStatus.SENT}
    assert {o.integration_id for o in outcomes.values()} == {integration_id("b")}
    assert a_count(outcomes, "a") == 1
    held = circuit.held_many([str(integration_id("a"))])[str(integration_id("a"))]
    assert 29.0 < held <= 30.0
    # Within the cap: a pause, not a fault; the integration's status is left alone.
    assert circuit.view.opened == set()


def test_a_held_integration_gets_no_request_and_the_delivery_waits_for_the_hold_s_end(
    runtime: SendingRuntime,
) -> None:
    circuit = Circuit(held={integration_id("a"): 40.0})
    [outcome] = send(runtime, [job(candidate("a"))], circuit)
    assert outcome.attempts == []
    assert outcome.status is DeliveryStatus.RETRYING
    assert outcome.reason == "every remaining integration is held by its provider's Retry-After"
    # At the hold's end, spread by up to the base delay (2 s): not before, not hammering.
    assert outcome.delay is not None
    assert 39.0 < outcome.delay <= 40.0 + POLICY.retry_base_delay


def test_the_delivery_that_met_the_retry_after_waits_for_it_when_nothing_else_is_left(
    runtime: SendingRuntime,
) -> None:
    [outcome] = send(runtime, [job(candidate("a", ["rate_limited"]))])
    assert tried(outcome) == [(integration_id("a"), AttemptOutcome.RETRYABLE)]
    assert outcome.status is DeliveryStatus.RETRYING
    assert outcome.delay is not None and 30.0 <= outcome.delay <= 30.0 + POLICY.retry_base_delay


def test_a_retry_after_beyond_the_cap_holds_for_the_cap_and_marks_the_integration(
    runtime: SendingRuntime,
) -> None:
    circuit = Circuit()
    month = candidate("a", ["rate_limited"])
    month = replace(month, settings={**month.settings, "retry_after": 30 * 86400.0})
    jobs = [job(month), job(month, candidate("b"))]
    sender = BatchSender(
        runtime,
        replace(POLICY, concurrency_per_integration=1, retry_after_cap=20.0),
        circuit.view,
    )
    outcomes = runtime.run(sender.send_all(jobs))
    held = circuit.held_many([str(integration_id("a"))])[str(integration_id("a"))]
    assert 19.0 < held <= 20.0
    assert circuit.view.opened == {integration_id("a")}
    # The sends to "a" after the 429 answered well (the script is spent): still held, still
    # marked, and no further request reached it.
    assert circuit.view.closed == set()
    assert a_count(outcomes, "a") == 1
    waiting = outcomes[jobs[0].delivery_id]
    assert waiting.status is DeliveryStatus.RETRYING
    assert waiting.delay is not None and 20.0 <= waiting.delay <= 22.0
    assert outcomes[jobs[1].delivery_id].integration_id == integration_id("b")


def test_a_success_in_flight_does_not_lift_a_hold_but_closes_a_circuit_failures_opened() -> None:
    a = integration_id("a")
    circuit = Circuit(threshold=1)
    circuit.view.failure(a)
    circuit.view.hold(a, 60.0, beyond_cap=False)
    assert circuit.view.blocked(a) and a in circuit.view.opened
    circuit.view.success(a)
    # The failure-opened circuit is closed (the integration answered) ...
    assert not circuit.is_open(str(a)) and a in circuit.view.closed
    # ... the provider's hold is not.
    assert circuit.view.held_for(a) is not None
    assert str(a) in circuit.held_many([str(a)])


def test_a_success_of_an_integration_read_in_error_closes_it(runtime: SendingRuntime) -> None:
    circuit = Circuit()
    in_error = replace(candidate("a"), status=IntegrationStatus.ERROR)
    [outcome] = send(runtime, [job(in_error)], circuit)
    assert outcome.status is DeliveryStatus.SENT
    assert circuit.view.closed == {integration_id("a")}

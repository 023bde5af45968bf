"""Send a batch of jobs concurrently, each falling back through its integrations.

Per job, integrations are tried in order. A provider answer decides what happens next:

* sent: done;
* recipient error: the delivery fails; other integrations would fail the same way;
* integration error (bad credentials, configuration): this integration is burned for the
  delivery and the next one is tried at once;
* retryable error: retried later on the same integration with backoff, until it has had
  ``max_attempts_per_integration`` attempts; then the next integration is tried at once;
* retryable error with a ``Retry-After``: the integration is held for that long, up to
  ``retry_after_cap`` (:mod:`~dispatcher.sending.circuit`), for every delivery of every worker;
  this delivery, like the others, tries the next integration at once;
* ambiguous error (no answer, but the request may have reached the provider): retried like a
  retryable error, unless the integration's ``on_ambiguous`` (or its channel's default) is
  ``record_unknown``: then the delivery is ``unknown``, neither resent nor sent elsewhere
  (:mod:`~dispatcher.sending.ambiguity`).

Integrations whose circuit is open, or that are held, are passed over; if only such
integrations are left, the delivery waits (for the hold's end, else the cool-down) instead of
failing, with no request to them meanwhile.

Before any request, the message is fitted to the provider's declared limits
(:mod:`~dispatcher.sending.limits`): an integration it does not fit is passed over, and the
delivery fails with the reason only when none fits. A send to a rate-limited integration takes
its turn (:mod:`~dispatcher.sending.rate_limit`); when the turn is beyond the batch, the delivery
is retried then, with no attempt counted.

Right before each request the batch checks that the delivery is still its own (the send lease may
have been taken over) and that its send deadline has not passed: a delivery lost is not sent, one
past the deadline is retried, with no attempt counted. A request has ``request_timeout`` seconds
for its whole answer (an answer trickled byte by byte does not reset it); beyond, it counts as an
ambiguous timeout (the request may have been sent).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from dispatcher.observability.redaction import default_redactor
from dispatcher.runtime.http import SendingRuntime
from dispatcher.runtime.url_guard import DestinationGuard, UnsafeDestinationError
from dispatcher.sending.ambiguity import on_ambiguous
from dispatcher.sending.backoff import hold_delay, retry_delay
from dispatcher.sending.circuit import CircuitView
from dispatcher.sending.fetch import FETCH_PROVIDER, Fetched, FetchRequest, perform
from dispatcher.sending.integrations import Candidate, Prepared, prepare
from dispatcher.sending.limits import fitting
from dispatcher.sending.plan import Job
from dispatcher.sending.rate_limit import Deferred, Pacer, local_rate_store, send_rate
from models import AttemptOutcome, ChannelType, DeliveryStatus, IntegrationStatus, OnAmbiguous
from models.types import utcnow
from providers.base import Message, SendResult
from providers.errors import (
    AmbiguousError,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.http import DestinationRefusedError

MAX_ERROR_LENGTH = 500


@dataclass
class Attempt:
    delivery_id: uuid.UUID
    organisation_id: uuid.UUID
    #: None for a fetch step's request (no integration).
    integration_id: uuid.UUID | None
    provider: str
    outcome: AttemptOutcome
    http_status: int | None
    latency_ms: float
    error_class: str | None = None
    error: str | None = None
    at: datetime = field(default_factory=utcnow)
    #: Device tokens the provider said are gone (not part of the attempt log: an address).
    expired_tokens: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What became of one job: ``sent``, ``failed``, ``retrying`` (with a delay) or ``skipped``."""

    status: DeliveryStatus
    reason: str | None = None
    integration_id: uuid.UUID | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    delay: float | None = None
    attempts: list[Attempt] = field(default_factory=list)
    #: A fetch step's answer (when ``sent``), merged into the payload as it is written back.
    fetched: Fetched | None = None


@dataclass(frozen=True)
class Policy:
    max_attempts_per_integration: int
    max_attempts_per_delivery: int
    retry_base_delay: float
    retry_max_delay: float
    circuit_cooldown: float
    concurrency_per_integration: int
    #: Seconds of ``Retry-After`` a delivery waits for at most (beyond: fall back).
    retry_after_cap: float
    url_allowlist: tuple[str, ...] = ()
    #: Seconds a batch may wait for rate-limited integrations' turns; later turns are retried.
    max_rate_wait: float = 0.0
    #: Seconds one provider request may take, answer included; None: no bound of ours.
    request_timeout: float | None = None
    #: ``on_ambiguous`` of integrations whose settings do not say, by channel (else resend).
    on_ambiguous_by_channel: Mapping[ChannelType, OnAmbiguous] = field(
        default_factory=lambda: MappingProxyType({})
    )


def classify(error: Exception) -> tuple[AttemptOutcome, int | None, str]:
    if isinstance(error, RecipientError):
        return AttemptOutcome.RECIPIENT_ERROR, error.status_code, error.reason
    if isinstance(error, AmbiguousError):
        return AttemptOutcome.AMBIGUOUS, error.status_code, error.reason
    if isinstance(error, RetryableError):
        return AttemptOutcome.RETRYABLE, error.status_code, error.reason
    if isinstance(error, ProviderError):
        return AttemptOutcome.INTEGRATION_ERROR, error.status_code, error.reason
    if isinstance(error, ValidationError):
        fields = ", ".join(".".join(map(str, item["loc"])) for item in error.errors())
        return AttemptOutcome.INTEGRATION_ERROR, None, f"stored configuration invalid: {fields}"
    # A defect in a provider module: treated like a broken integration, never as a crash.
    return AttemptOutcome.INTEGRATION_ERROR, None, f"provider raised {type(error).__name__}"


class BatchSender:
    def __init__(
        self,
        runtime: SendingRuntime,
        policy: Policy,
        circuit: CircuitView,
        pacer: Pacer | None = None,
        *,
        held: Callable[[uuid.UUID], bool] = lambda _id: True,
        send_deadline: float | None = None,
    ) -> None:
        """``held``: whether a delivery is still this batch's to send; ``send_deadline``: the
        ``time.monotonic()`` after which no request starts."""
        self.runtime = runtime
        self.policy = policy
        self.circuit = circuit
        self.pacer = pacer or Pacer(local_rate_store(), max_wait=policy.max_rate_wait)
        self._semaphores: dict[uuid.UUID, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(policy.concurrency_per_integration)
        )
        # A fetch URL's host is a destination of its own, bounded like an integration.
        self._fetch_slots: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(policy.concurrency_per_integration)
        )
        # Per batch: each integration is prepared and each destination checked once.
        self._integrations: dict[uuid.UUID, asyncio.Future[Prepared]] = {}
        self.guard = DestinationGuard(policy.url_allowlist)
        self.held = held
        self.send_deadline = send_deadline

    async def send_all(
        self, jobs: list[Job], on_outcome: Callable[[Job, Outcome], None] | None = None
    ) -> dict[uuid.UUID, Outcome]:
        """``on_outcome`` is told of each outcome as soon as it is known."""
        # The credentials decrypted for this batch are masked in its errors and log lines, then
        # forgotten (but for the last few): a long-lived worker meets every tenant's secrets.
        with default_redactor.scope():
            outcomes = await asyncio.gather(*(self._reported(job, on_outcome) for job in jobs))
        return {job.delivery_id: outcome for job, outcome in zip(jobs, outcomes, strict=True)}

    async def _reported(
        self, job: Job, on_outcome: Callable[[Job, Outcome], None] | None
    ) -> Outcome:
        outcome = await self.send_one(job)
        if on_outcome is not None:
            on_outcome(job, outcome)
        return outcome

    async def send_one(self, job: Job) -> Outcome:  # noqa: PLR0912 - the docstring's table
        if job.fetch is not None:
            return await self.fetch_one(job, job.fetch)
        assert job.message is not None
        outcome = Outcome(status=DeliveryStatus.FAILED)
        total = job.attempts
        fitted, refusal = fitting(job.candidates, job.message)
        last_error = refusal or "all integrations failed"
        waited_on_circuit = unreadable = False
        #: Seconds until the soonest held integration that could still send it is free.
        paused: float | None = None
        for candidate, message in fitted:
            used = job.attempts_by_integration.get(candidate.integration_id, 0)
            if (
                candidate.integration_id in job.burned
                or used >= self.policy.max_attempts_per_integration
            ):
                continue
            if candidate.unreadable:
                unreadable = True
                continue
            if (held := self.circuit.held_for(candidate.integration_id)) is not None:
                paused = _sooner(paused, held)
                continue
            if candidate.integration_id in self.circuit.open_ids:
                waited_on_circuit = True
                continue
            if total >= self.policy.max_attempts_per_delivery:
                last_error = f"gave up after {total} attempts: {last_error}"
                break
            tried = await self._attempt(job, candidate, message)
            if tried is None:
                if (held := self.circuit.held_for(candidate.integration_id)) is not None:
                    paused = _sooner(paused, held)
                else:
                    waited_on_circuit = True
                continue
            if isinstance(tried, Deferred):
                return _deferred(outcome, candidate, tried)
            if isinstance(tried, Withheld):
                outcome.status, outcome.reason, outcome.delay = (
                    DeliveryStatus.RETRYING, tried.reason, 0.0,
                )  # fmt: skip
                return outcome
            attempt, result, error = tried
            total += 1
            outcome.attempts.append(attempt)
            outcome.integration_id, outcome.provider = candidate.integration_id, candidate.provider
            if error is not None:
                last_error = f"{candidate.provider}: {attempt.error}"
            if self._settled(
                outcome, job, candidate, message_id=result, error=error, last_error=last_error
            ):
                return outcome
            if isinstance(error, RetryableError):
                delay, held = self._after_retryable(candidate, error, used + 1, total)
                if delay is not None:
                    outcome.status, outcome.reason, outcome.delay = (
                        DeliveryStatus.RETRYING, last_error, delay,
                    )  # fmt: skip
                    return outcome
                if held is not None:
                    paused = _sooner(paused, held)
        return self._unsent(
            outcome, total=total, last_error=last_error, paused=paused,
            waited_on_circuit=waited_on_circuit, unreadable=unreadable,
        )  # fmt: skip

    async def fetch_one(self, job: Job, request: FetchRequest) -> Outcome:
        """A fetch step's request: retried like a send on one integration (backoff, or the
        answer's ``Retry-After`` up to the cap, for ``max_attempts_per_integration``
        attempts); every other failure fails it at once. At most
        ``concurrency_per_integration`` requests of the batch to one host are in flight."""
        if (withheld := self._withheld(job)) is not None:
            return Outcome(DeliveryStatus.RETRYING, withheld.reason, delay=0.0)
        started, started_at = time.perf_counter(), utcnow()
        try:
            async with self._fetch_slots[_host_key(request.url)]:
                fetched, status = await perform(request, self.runtime.client(), self.guard)
        except Exception as exc:
            # Whatever else a tenant's URL makes go wrong fails this fetch, never the batch.
            outcome, status_code, reason = classify(exc)
            error: ProviderError
            if isinstance(exc, ProviderError):
                error = exc
            else:
                reason = f"the request failed: {type(exc).__name__}"
                error = IntegrationError(FETCH_PROVIDER, reason)
            reason = default_redactor.redact_text(reason)[:MAX_ERROR_LENGTH]
            attempt = Attempt(
                job.delivery_id, job.organisation_id, None, FETCH_PROVIDER, outcome,
                status_code, (time.perf_counter() - started) * 1000, type(error).__name__,
                reason, at=started_at,
            )  # fmt: skip
            return self._fetch_failed(job, attempt, error)
        attempt = Attempt(
            job.delivery_id, job.organisation_id, None, FETCH_PROVIDER, AttemptOutcome.SENT,
            status, (time.perf_counter() - started) * 1000, at=started_at,
        )  # fmt: skip
        return Outcome(
            DeliveryStatus.SENT, provider=FETCH_PROVIDER, attempts=[attempt], fetched=fetched
        )

    def _fetch_failed(self, job: Job, attempt: Attempt, error: ProviderError) -> Outcome:
        made = job.attempts + 1
        reason = f"fetch: {attempt.error}"
        outcome = Outcome(
            DeliveryStatus.FAILED, reason, provider=FETCH_PROVIDER, attempts=[attempt]
        )
        if not isinstance(error, RetryableError):
            return outcome
        if made >= self.policy.max_attempts_per_integration:
            outcome.reason = f"fetch: gave up after {made} attempts: {attempt.error}"
            return outcome
        outcome.status = DeliveryStatus.RETRYING
        if error.retry_after:
            held = min(error.retry_after, self.policy.retry_after_cap)
            outcome.delay = hold_delay(held, spread=self.policy.retry_base_delay)
        else:
            outcome.delay = retry_delay(
                made, base=self.policy.retry_base_delay, cap=self.policy.retry_max_delay
            )
        return outcome

    def _settled(
        self,
        outcome: Outcome,
        job: Job,
        candidate: Candidate,
        *,
        message_id: str | None,
        error: Exception | None,
        last_error: str,
    ) -> bool:
        """Whether this answer ends the delivery (``outcome`` says how): sent, refused for the
        recipient, or ambiguous where the integration sends at most once."""
        if error is None:
            self.circuit.success(
                candidate.integration_id,
                was_error=candidate.status is IntegrationStatus.ERROR,
            )
            outcome.status, outcome.provider_message_id = DeliveryStatus.SENT, message_id
            return True
        if isinstance(error, RecipientError):
            outcome.status, outcome.reason = DeliveryStatus.FAILED, last_error
            return True
        self.circuit.failure(candidate.integration_id)
        if isinstance(error, AmbiguousError) and self._records_unknown(job, candidate):
            outcome.status = DeliveryStatus.UNKNOWN
            outcome.reason = f"{last_error} (not resent: on_ambiguous is record_unknown)"
            return True
        return False

    def _records_unknown(self, job: Job, candidate: Candidate) -> bool:
        """Whether an ambiguous failure on ``candidate`` ends the delivery as ``unknown``."""
        # An attempt was made, so the integration was prepared (its settings are valid).
        prepared = self._integrations[candidate.integration_id].result()
        choice = on_ambiguous(prepared.delivery, job.channel, self.policy.on_ambiguous_by_channel)
        return choice is OnAmbiguous.RECORD_UNKNOWN

    def _after_retryable(
        self, candidate: Candidate, error: RetryableError, used: int, total: int
    ) -> tuple[float | None, float | None]:
        """(seconds before retrying on this integration, seconds the delivery may wait for the
        integration's hold): a ``Retry-After`` holds the integration, and the delivery moves on
        to the next one; otherwise it backs off here while it has attempts left."""
        retry_here = (
            used < self.policy.max_attempts_per_integration
            and total < self.policy.max_attempts_per_delivery
        )
        if error.retry_after:
            # A rate limit is the account's, not the message's: every send waits.
            held = self._hold(candidate, error.retry_after)
            return None, held if retry_here else None
        if retry_here:
            delay = retry_delay(
                used, base=self.policy.retry_base_delay, cap=self.policy.retry_max_delay
            )
            return delay, None
        return None, None

    def _hold(self, candidate: Candidate, retry_after: float) -> float:
        """Hold the integration for its ``Retry-After``, up to the cap; the seconds held."""
        cap = self.policy.retry_after_cap
        held = min(retry_after, cap)
        self.circuit.hold(candidate.integration_id, held, beyond_cap=retry_after > cap)
        return held

    def _unsent(
        self,
        outcome: Outcome,
        *,
        total: int,
        last_error: str,
        paused: float | None,
        waited_on_circuit: bool,
        unreadable: bool,
    ) -> Outcome:
        """No integration sent it: while attempts are left, wait for one that may (held, open
        circuit, unreadable credentials); otherwise fail."""
        outcome.status = DeliveryStatus.RETRYING
        if total >= self.policy.max_attempts_per_delivery:
            outcome.status, outcome.reason = DeliveryStatus.FAILED, last_error
        elif paused is not None:
            if not outcome.attempts:
                last_error = "every remaining integration is held by its provider's Retry-After"
            outcome.reason = last_error
            outcome.delay = hold_delay(paused, spread=self.policy.retry_base_delay)
            if waited_on_circuit:
                outcome.delay = min(outcome.delay, self.policy.circuit_cooldown)
        elif waited_on_circuit or unreadable:
            outcome.reason = (
                "every remaining integration's circuit is open"
                if waited_on_circuit
                else "the integration's credentials cannot be decrypted with the worker's keys"
            )
            outcome.delay = self.policy.circuit_cooldown
        else:
            outcome.status, outcome.reason = DeliveryStatus.FAILED, last_error
        return outcome

    async def _attempt(
        self, job: Job, candidate: Candidate, message: Message
    ) -> tuple[Attempt, str | None, Exception | None] | Deferred | Withheld | None:
        """The attempt, its message id and its error; None when the integration's circuit
        opened while this send waited for its turn, Deferred when its rate limit has no turn
        for it in this batch, Withheld when the delivery is no longer the batch's or its send
        deadline passed (nothing was sent in these three cases)."""
        started = time.perf_counter()
        started_at = utcnow()
        error: Exception | None = None
        message_id: str | None = None
        status_code: int | None = None
        expired: tuple[str, ...] = ()
        try:
            prepared = await self._prepared(candidate)
            await self._guard_recipient(job, candidate)
            async with self._semaphores[candidate.integration_id]:
                if self.circuit.blocked(candidate.integration_id):
                    return None
                rate = send_rate(type(prepared.provider), prepared.settings)
                deferred = await self.pacer.turn(candidate.integration_id, rate)
                if deferred is not None:
                    return deferred
                if (withheld := self._withheld(job)) is not None:
                    return withheld
                if rate is not None and self.circuit.blocked(candidate.integration_id):
                    return None  # held while this send waited for its turn
                result = await self._within_timeout(
                    candidate,
                    prepared.provider.send(
                        message, prepared.credentials, prepared.settings, prepared.client
                    ),
                )
            message_id, status_code = result.provider_message_id, result.status_code
            expired = result.expired_tokens
        except Exception as exc:
            if isinstance(exc, ProviderError):
                expired = exc.expired_tokens
            error = _blame_recipient_url(job, exc)
        latency = (time.perf_counter() - started) * 1000
        if error is None:
            attempt = Attempt(
                job.delivery_id, job.organisation_id, candidate.integration_id,
                candidate.provider, AttemptOutcome.SENT, status_code, latency, at=started_at,
                expired_tokens=expired,
            )  # fmt: skip
            return attempt, message_id, None
        outcome, status_code, reason = classify(error)
        # An API may echo the request's credentials in its error text; none of it is stored.
        reason = default_redactor.redact_text(reason)
        attempt = Attempt(
            job.delivery_id, job.organisation_id, candidate.integration_id, candidate.provider,
            outcome, status_code, latency, type(error).__name__, reason[:MAX_ERROR_LENGTH],
            at=started_at, expired_tokens=expired,
        )  # fmt: skip
        if outcome is AttemptOutcome.INTEGRATION_ERROR and not isinstance(error, ProviderError):
            error = IntegrationError(candidate.provider, reason)
        return attempt, None, error

    def _withheld(self, job: Job) -> Withheld | None:
        if not self.held(job.delivery_id):
            return Withheld("the send lease was taken over by another worker")
        if self.send_deadline is not None and time.monotonic() >= self.send_deadline:
            return Withheld("the batch's send deadline passed before this send")
        return None

    async def _within_timeout(
        self, candidate: Candidate, request: Coroutine[Any, Any, SendResult]
    ) -> SendResult:
        timeout = self.policy.request_timeout
        if timeout is None:
            return await request
        try:
            async with asyncio.timeout(timeout):
                return await request
        except TimeoutError:
            # Counted from before connecting, so it may also expire while connecting (a connect
            # alone times out sooner: at most 5 s): ambiguous either way.
            raise AmbiguousError(
                candidate.provider,
                f"no complete answer within {timeout:g}s; the request may have reached the "
                "provider",
            ) from None

    async def _prepared(self, candidate: Candidate) -> Prepared:
        """The integration ready to call; prepared once per batch."""
        key = candidate.integration_id
        if key not in self._integrations:
            self._integrations[key] = asyncio.ensure_future(
                prepare(candidate, self.guard, self.runtime)
            )
        return await asyncio.shield(self._integrations[key])

    async def _guard_recipient(self, job: Job, candidate: Candidate) -> None:
        """A subscriber's own webhook URL must not reach private, loopback or metadata
        addresses either."""
        assert job.message is not None
        url = job.message.to.webhook_url
        if url and job.channel in GUARDED_CHANNELS:
            try:
                await self.guard.check(url)
            except UnsafeDestinationError as exc:
                reason = f"webhook URL refused: {exc}"
                raise RecipientError(candidate.provider, reason) from None


GUARDED_CHANNELS = frozenset({ChannelType.WEBHOOK, ChannelType.CHAT})


@dataclass(frozen=True)
class Withheld:
    """Not sent, no attempt counted: retried later (by whoever holds the delivery then)."""

    reason: str


def _blame_recipient_url(job: Job, error: Exception) -> Exception:
    """A connection refused to the subscriber's own webhook URL (its name resolved to a
    private address only when connecting) fails the delivery, like the check before it."""
    url = job.message.to.webhook_url if job.message is not None else None
    if (
        isinstance(error, DestinationRefusedError)
        and url
        and job.channel in GUARDED_CHANNELS
        and (urlsplit(url).hostname or "").rstrip(".") == error.host.lower().rstrip(".")
    ):
        return RecipientError(error.provider, f"webhook URL refused: {error.reason}")
    return error


def _host_key(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return url


def _sooner(paused: float | None, held: float) -> float:
    return held if paused is None else min(paused, held)


def _deferred(outcome: Outcome, candidate: Candidate, deferred: Deferred) -> Outcome:
    """Retried once the integration's rate has a turn for it: no attempt, no fallback."""
    outcome.status, outcome.delay = DeliveryStatus.RETRYING, deferred.delay
    outcome.reason = f"{candidate.provider}: waiting for the integration's rate limit"
    return outcome

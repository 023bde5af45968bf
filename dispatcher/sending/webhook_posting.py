"""Posting outbound webhook events: reserve what is due, claim, post signed, write back.

The :class:`~models.WebhookEvent` rows are an outbox of their own, run by the rules of the
deliveries' (:mod:`dispatcher.notifications.outbox`, :mod:`dispatcher.sending.store`):

* written reserved for ``enqueue_lease`` seconds and handed to the broker after their commit;
  the beat sweep (:func:`reserve_due`) hands on whatever is due and was not taken, and takes
  back rows whose worker stopped while posting (their send lease ran out), so a lost message
  or a dead worker delays an event and loses none;
* claimed under a fresh token, posted, and written back only while the token still holds;
* retried with the deliveries' backoff (:func:`~dispatcher.sending.backoff.retry_delay` on
  ``retry_base_delay`` and ``retry_max_delay``, a ``Retry-After`` honoured up to
  ``retry_after_cap``) until ``webhook_max_attempts`` attempts were made; then ``failed``;
* guarded by the shared circuit breaker (:func:`~dispatcher.sending.batch.circuit_store`),
  keyed by the endpoint's id: an endpoint that keeps failing is left alone for
  ``circuit_cooldown`` and its events wait (no attempt counted);
* every post logged as a :class:`~models.WebhookEventAttempt` (outcome, HTTP status, latency,
  error class; never the answer's body).

Each post is signed as the ``webhook`` provider signs (:func:`providers.webhook.sign`:
``X-Dispatcher-Timestamp`` and ``X-Dispatcher-Signature: v1=<hex HMAC-SHA256 of
"{timestamp}.{raw body}">``) with the endpoint's secret, at each attempt (a retry carries a
fresh timestamp), and carries ``Idempotency-Key`` and ``X-Dispatcher-Event-Id`` (the event's id)
and ``X-Dispatcher-Event-Type``. A 2xx answer is success; any other answer and any network
failure is retried; a URL the guard refuses (when checked, or when connecting) fails the event
at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from dispatcher.config import Settings, get_settings
from dispatcher.runtime.resources import database
from dispatcher.runtime.url_guard import DestinationGuard, UnsafeDestinationError
from dispatcher.sending.backoff import retry_delay
from dispatcher.sending.batch import circuit_store, sending_runtime
from dispatcher.sending.circuit import CircuitStore
from models import (
    AttemptOutcome,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventAttempt,
    WebhookEventStatus,
)
from models.bulk import among, insert_many, update_many
from models.crypto import KeyRingError
from models.ids import new_id, new_row_id
from models.types import utcnow
from providers.errors import IntegrationError, ProviderError, RetryableError
from providers.http import DestinationRefusedError, classify_status, send_bounded_request
from providers.retry_after import bounded_wait
from providers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

logger = logging.getLogger(__name__)

#: The name errors and the attempt log give the poster.
POSTER = "app_webhook"
EVENT_ID_HEADER = "X-Dispatcher-Event-Id"
EVENT_TYPE_HEADER = "X-Dispatcher-Event-Type"
#: An endpoint's answer is read up to this many bytes (it is not used, only its status).
MAX_ANSWER_BYTES = 64 * 1024
#: Posts in flight to one endpoint at once, per worker process.
PER_ENDPOINT = 10
_OPEN = (WebhookEventStatus.QUEUED, WebhookEventStatus.RETRYING)


@dataclass
class PostReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    #: Claimed but taken over before the outcome could be written.
    lost: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "claimed": self.claimed, "sent": self.sent, "failed": self.failed,
            "retrying": self.retrying, "lost": self.lost,
        }  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One event to post, as read from its row and its endpoint's (the secret stays a
    ``SecretStr``: no repr shows it)."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    enabled: bool
    secret: SecretStr | None
    body: bytes
    event_id: str
    type: str
    attempts: int


@dataclass
class _Result:
    status: WebhookEventStatus
    reason: str | None = None
    http_status: int | None = None
    delay: float = 0.0
    #: The attempt made, or None when no request was made (open circuit, unreadable secret).
    attempt: dict[str, Any] | None = None
    counts: bool = True


@dataclass
class _Due:
    ids: list[uuid.UUID] = field(default_factory=list)
    recovered: int = 0


def _due(now: datetime, open_until: datetime | None = None) -> Any:
    """Open rows due by ``open_until`` (default ``now``), and rows whose send lease ran out."""
    return or_(
        and_(WebhookEvent.status.in_(_OPEN), WebhookEvent.next_attempt_at <= (open_until or now)),
        and_(
            WebhookEvent.status == WebhookEventStatus.SENDING, WebhookEvent.next_attempt_at <= now
        ),
    )


def reserve_due(settings: Settings | None = None, *, limit: int = 1000) -> list[list[uuid.UUID]]:
    """Beat: reserve due events for ``enqueue_lease`` seconds; answers them in batches of
    ``delivery_batch_size`` to hand to the broker (rows being posted by a worker that stopped
    become ``retrying``: that post may be repeated, which the event id lets receivers drop)."""
    settings = settings or get_settings()
    now = utcnow()
    with database().transaction() as session:
        rows = session.execute(
            select(WebhookEvent.id, WebhookEvent.status)
            .where(_due(now))
            .order_by(WebhookEvent.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        ids = [row.id for row in rows]
        stale = [row.id for row in rows if row.status is WebhookEventStatus.SENDING]
        if ids:
            session.execute(
                update(WebhookEvent)
                .where(among(session, WebhookEvent.id, ids))
                .values(next_attempt_at=now + timedelta(seconds=settings.enqueue_lease))
            )
        if stale:
            logger.warning("webhook events: %d were being posted by a stopped worker", len(stale))
            session.execute(
                update(WebhookEvent)
                .where(among(session, WebhookEvent.id, stale))
                .values(status=WebhookEventStatus.RETRYING)
            )
    size = settings.delivery_batch_size
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def claim(
    session: Session, ids: list[uuid.UUID], settings: Settings, now: datetime, token: uuid.UUID
) -> list[uuid.UUID]:
    """Take the events no one else is posting (a reserved row is claimable; a terminal one, or
    one whose retry is not due, is not)."""
    claimable = _due(now, now + timedelta(seconds=settings.enqueue_lease))
    return list(
        session.scalars(
            update(WebhookEvent)
            .where(among(session, WebhookEvent.id, ids), claimable)
            .values(
                status=WebhookEventStatus.SENDING,
                next_attempt_at=now + timedelta(seconds=settings.send_lease),
                claim_token=token,
                updated_at=now,
            )
            .returning(WebhookEvent.id)
        )
    )


def process_events(raw_ids: list[str], settings: Settings | None = None) -> PostReport:
    """Post a batch of events (by id) and write their outcomes."""
    settings = settings or get_settings()
    ids = _parse_ids(raw_ids)
    token = new_id()
    now = utcnow()
    with database().transaction() as session:
        claimed = claim(session, ids, settings, now, token)
    report = PostReport(claimed=len(claimed))
    if not claimed:
        return report
    with database().session() as session:
        jobs = _load(session, claimed)
    results = sending_runtime().run(_post_all(jobs, settings))
    _write_back(jobs, results, token, settings, report)
    return report


def _load(session: Session, ids: list[uuid.UUID]) -> list[Job]:
    rows = session.execute(
        select(
            WebhookEvent.id, WebhookEvent.organisation_id, WebhookEvent.endpoint_id,
            WebhookEvent.event_id, WebhookEvent.type, WebhookEvent.payload, WebhookEvent.attempts,
            WebhookEndpoint.url, WebhookEndpoint.enabled,
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookEvent.endpoint_id)
        .where(among(session, WebhookEvent.id, ids))
    ).all()  # fmt: skip
    secrets = _secrets(session, {row.endpoint_id for row in rows})
    return [_job(row, secrets.get(row.endpoint_id)) for row in rows]


def _job(row: Any, secret: SecretStr | None) -> Job:
    return Job(
        id=row.id, organisation_id=row.organisation_id, endpoint_id=row.endpoint_id,
        url=row.url, enabled=row.enabled, secret=secret,
        body=json.dumps(row.payload, separators=(",", ":"), ensure_ascii=False).encode(),
        event_id=str(row.event_id), type=row.type.value, attempts=row.attempts,
    )  # fmt: skip


def _secrets(session: Session, endpoint_ids: set[uuid.UUID]) -> dict[uuid.UUID, SecretStr]:
    """Each endpoint's signing secret; one the keys cannot open is left out (its events wait,
    as deliveries wait for an integration whose credentials cannot be read)."""
    found: dict[uuid.UUID, SecretStr] = {}
    for endpoint_id in endpoint_ids:
        try:
            sealed = session.scalar(
                select(WebhookEndpoint.secret).where(WebhookEndpoint.id == endpoint_id)
            )
        except KeyRingError:
            logger.error("webhook endpoint %s: its secret cannot be decrypted", endpoint_id)
            continue
        value = (sealed or {}).get("signing_secret")
        if isinstance(value, str) and value:
            found[endpoint_id] = SecretStr(value)
    return found


async def _post_all(jobs: list[Job], settings: Settings) -> dict[uuid.UUID, _Result]:
    guard = DestinationGuard(settings.url_allowlist)
    circuit = circuit_store()
    slots: dict[uuid.UUID, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(PER_ENDPOINT))
    results: dict[uuid.UUID, _Result] = {}

    async def one(job: Job) -> None:
        async with slots[job.endpoint_id]:
            try:
                results[job.id] = await _post_one(job, settings, guard, circuit)
            except Exception as exc:  # a tenant's endpoint never fails the batch
                logger.exception("webhook event: unexpected failure posting")
                results[job.id] = _retry(job, settings, f"unexpected {type(exc).__name__}", None)

    await asyncio.gather(*(one(job) for job in jobs))
    return results


def _withheld(job: Job, settings: Settings, circuit: CircuitStore) -> _Result | None:
    """Why no request is made for ``job`` now, or None."""
    if not job.enabled:
        return _Result(WebhookEventStatus.FAILED, "the endpoint is disabled", counts=False)
    if job.secret is None:
        return _Result(
            WebhookEventStatus.RETRYING, "the endpoint's secret cannot be read with this "
            "worker's keys", delay=settings.circuit_cooldown, counts=False,
        )  # fmt: skip
    if circuit.is_open(str(job.endpoint_id)):
        return _Result(
            WebhookEventStatus.RETRYING, "the endpoint's circuit is open",
            delay=settings.circuit_cooldown, counts=False,
        )  # fmt: skip
    return None


async def _post_one(
    job: Job, settings: Settings, guard: DestinationGuard, circuit: CircuitStore
) -> _Result:
    withheld = _withheld(job, settings, circuit)
    if withheld is not None:
        return withheld
    assert job.secret is not None
    key = str(job.endpoint_id)
    started = time.monotonic()
    try:
        status = await post(
            job, job.secret, sending_runtime().client(), guard, settings.send_timeout
        )
    except RefusedDestinationError as exc:
        return _failed(job, exc, started)
    except ProviderError as exc:
        circuit.record_failure(key)
        retry_after = exc.retry_after if isinstance(exc, RetryableError) else None
        return _retry(job, settings, exc.reason, _attempt(job, exc, started), retry_after)
    circuit.record_success(key)
    return _Result(
        WebhookEventStatus.SENT, http_status=status,
        attempt=_attempt_row(job, AttemptOutcome.SENT, status, started, None, None),
    )  # fmt: skip


class RefusedDestinationError(IntegrationError):
    """The endpoint's URL was refused by the URL guard (checked, or when connecting): the
    event fails at once, not retried."""


async def post(
    job: Job,
    secret: SecretStr,
    client: httpx.AsyncClient,
    guard: DestinationGuard,
    timeout: float,
) -> int:
    """Post one event, signed, to its endpoint (its URL checked by ``guard`` first; the
    client's connector checks the address it connects to again); the 2xx status, or a
    :mod:`providers.errors` error (:class:`RefusedDestinationError` for a refused URL)."""
    try:
        await guard.check(job.url)
    except UnsafeDestinationError as exc:
        raise RefusedDestinationError(POSTER, f"refused by the URL guard: {exc}") from None
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret.get_secret_value(), timestamp, job.body),
        "Idempotency-Key": job.event_id,
        EVENT_ID_HEADER: job.event_id,
        EVENT_TYPE_HEADER: job.type,
        "Accept-Encoding": "identity",
    }
    try:
        response, _ = await send_bounded_request(
            POSTER, client, "POST", job.url, max_bytes=MAX_ANSWER_BYTES, timeout=timeout,
            headers=headers, content=job.body,
        )  # fmt: skip
    except DestinationRefusedError as exc:
        reason = exc.reason.removeprefix("destination refused: ")
        raise RefusedDestinationError(
            POSTER, f"refused by the URL guard when connecting: {reason}"
        ) from None
    if not 200 <= response.status_code < 300:
        # The status alone: an error page may echo the request.
        error = classify_status(
            POSTER, response, message=f"HTTP {response.status_code} from the endpoint"
        )
        if not isinstance(error, RetryableError):
            # Any answer but 2xx is retried (the receiver may be mid-deploy); the class stays.
            error = RetryableError(POSTER, error.reason, status_code=response.status_code)
        raise error
    return response.status_code


def _retry(
    job: Job,
    settings: Settings,
    reason: str,
    attempt: dict[str, Any] | None,
    retry_after: float | None = None,
) -> _Result:
    made = job.attempts + 1
    http_status = attempt.get("http_status") if attempt else None
    if made >= settings.webhook_max_attempts:
        return _Result(
            WebhookEventStatus.FAILED, f"gave up after {made} attempts: {reason}",
            http_status=http_status, attempt=attempt,
        )  # fmt: skip
    delay = retry_delay(made, base=settings.retry_base_delay, cap=settings.retry_max_delay)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.retry_after_cap))
    return _Result(
        WebhookEventStatus.RETRYING, reason, http_status=http_status, delay=delay, attempt=attempt
    )


def _failed(job: Job, error: ProviderError, started: float) -> _Result:
    return _Result(WebhookEventStatus.FAILED, error.reason, attempt=_attempt(job, error, started))


def _attempt(job: Job, error: ProviderError, started: float) -> dict[str, Any]:
    outcome = (
        AttemptOutcome.RETRYABLE if isinstance(error, RetryableError)
        else AttemptOutcome.INTEGRATION_ERROR
    )  # fmt: skip
    return _attempt_row(
        job, outcome, error.status_code, started, type(error).__name__, error.reason
    )


def _attempt_row(  # noqa: PLR0917 - the columns of one attempt
    job: Job,
    outcome: AttemptOutcome,
    http_status: int | None,
    started: float,
    error_class: str | None,
    error: str | None,
) -> dict[str, Any]:
    return {
        "id": new_row_id(), "organisation_id": job.organisation_id, "webhook_event_id": job.id,
        "outcome": outcome, "http_status": http_status,
        "latency_ms": round((time.monotonic() - started) * 1000, 3), "error_class": error_class,
        "error": error[:2000] if error else None, "meta": {}, "created_at": utcnow(),
    }  # fmt: skip


def _write_back(
    jobs: list[Job],
    results: dict[uuid.UUID, _Result],
    token: uuid.UUID,
    settings: Settings,
    report: PostReport,
) -> None:
    now = utcnow()
    by_id = {job.id: job for job in jobs}
    with database().transaction() as session:
        held = set(
            session.scalars(
                select(WebhookEvent.id)
                .where(
                    among(session, WebhookEvent.id, list(results)),
                    WebhookEvent.claim_token == token,
                    WebhookEvent.status == WebhookEventStatus.SENDING,
                )
                .with_for_update()
            )
        )
        report.lost += len(results) - len(held)
        changes: list[dict[str, Any]] = []
        attempts: list[dict[str, Any]] = []
        for event_id in held:
            result, job = results[event_id], by_id[event_id]
            row: dict[str, Any] = {
                "id": event_id, "status": result.status, "last_error": result.reason,
                "http_status": result.http_status, "updated_at": now, "next_attempt_at": None,
                "attempts": job.attempts + (1 if result.counts else 0),
            }  # fmt: skip
            if result.status is WebhookEventStatus.SENT:
                row["sent_at"] = now
                report.sent += 1
            elif result.status is WebhookEventStatus.RETRYING:
                delay = bounded_wait(result.delay) or 0.0
                row["next_attempt_at"] = now + timedelta(seconds=delay)
                report.retrying += 1
            else:
                report.failed += 1
            changes.append(row)
            if result.attempt is not None:
                attempts.append(result.attempt)
        update_many(session, WebhookEvent, changes)
        insert_many(session, WebhookEventAttempt, attempts)


def _parse_ids(raw_ids: list[str]) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for raw in raw_ids:
        try:
            ids.append(uuid.UUID(str(raw)))
        except ValueError:
            logger.warning("webhook events: ignoring an id that is not a UUID")
    return ids

"""The circuit probe: check integrations in ``error`` whose circuit has cooled down (and whose
``Retry-After`` hold, if any, has ended), and close the circuits of those whose provider vouches
for them again.

An integration is prepared exactly as for a send (:func:`~dispatcher.sending.integrations.prepare`),
so the probe never reaches a destination a send may not.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select, update

from dispatcher.config import Settings, get_settings
from dispatcher.observability.redaction import default_redactor
from dispatcher.runtime.http import SendingRuntime
from dispatcher.runtime.resources import database
from dispatcher.runtime.url_guard import DestinationGuard
from dispatcher.sending.batch import circuit_store, sending_runtime
from dispatcher.sending.integrations import Candidate, load_candidate, prepare
from models import Integration, IntegrationStatus
from models.types import utcnow
from providers.errors import IntegrationError, ProviderError

logger = logging.getLogger(__name__)

#: Integrations in error read per run; of those cooled down, how many are checked per run.
PROBE_SCAN_LIMIT = 10_000
PROBE_LIMIT = 200
#: Checks in flight at once.
PROBE_CONCURRENCY = 10
#: Seconds one provider check may take in all (its HTTP client has its own timeouts too).
PROBE_TIMEOUT = 30.0


@dataclass
class ProbeReport:
    #: Integrations whose check answered well: circuit closed, status back to active.
    closed: list[str] = field(default_factory=list)
    #: Checked and still failing: left in error (the next send remains the half-open probe).
    failing: list[str] = field(default_factory=list)
    #: Cooled down but their provider has no harmless check: the next send decides.
    unchecked: list[str] = field(default_factory=list)
    #: Circuit still open, or held: not probed yet.
    waiting: int = 0


def probe(settings: Settings | None = None) -> ProbeReport:
    """Check integrations in ``error`` whose circuit has cooled down; close those that answer."""
    settings = settings or get_settings()
    report = ProbeReport()
    with database().session() as session:
        ids = session.scalars(
            select(Integration.id)
            .where(
                Integration.status == IntegrationStatus.ERROR,
                Integration.environment == settings.environment,
            )
            .limit(PROBE_SCAN_LIMIT)
        ).all()
    store = circuit_store()
    keys = [str(item) for item in ids]
    # A held integration is not probed before its provider's Retry-After has passed.
    still_open = store.open_many(keys) | set(store.held_many(keys))
    report.waiting = len(still_open)
    cooled = [item for item in ids if str(item) not in still_open]
    if len(cooled) > PROBE_LIMIT:
        # A random share each run: integrations that keep failing cannot starve the others.
        cooled = random.sample(cooled, PROBE_LIMIT)
    candidates = [found for item in cooled if (found := _load(item)) is not None]
    if not candidates:
        return report
    runtime = sending_runtime()
    guard = DestinationGuard(settings.url_allowlist)
    answers = runtime.run(_check_all(runtime, guard, candidates))
    now = utcnow()
    for candidate, answer in zip(candidates, answers, strict=True):
        key = str(candidate.integration_id)
        if answer is None:
            report.unchecked.append(key)
        elif not answer:
            report.failing.append(key)
        else:
            store.record_success(key)
            with database().transaction() as session:
                session.execute(
                    update(Integration)
                    .where(
                        Integration.id == candidate.integration_id,
                        Integration.status == IntegrationStatus.ERROR,
                    )
                    .values(status=IntegrationStatus.ACTIVE, updated_at=now)
                )
            logger.info("integration %s: probe answered well, circuit closed", key)
            report.closed.append(key)
    return report


def _load(integration_id: uuid.UUID) -> Candidate | None:
    with database().session() as session:
        return load_candidate(session, integration_id)


async def _check_all(
    runtime: SendingRuntime, guard: DestinationGuard, candidates: list[Candidate]
) -> list[bool | None]:
    limit = asyncio.Semaphore(PROBE_CONCURRENCY)

    async def bounded(candidate: Candidate) -> bool | None:
        async with limit:
            return await _check(runtime, guard, candidate)

    # The credentials decrypted for the probe are masked in its log lines, then forgotten.
    with default_redactor.scope():
        return list(await asyncio.gather(*(bounded(candidate) for candidate in candidates)))


async def _check(
    runtime: SendingRuntime, guard: DestinationGuard, candidate: Candidate
) -> bool | None:
    """True: the provider vouched for the integration; False: it did not; None: no check."""
    integration_id = candidate.integration_id
    try:
        prepared = await prepare(candidate, guard, runtime)
    except IntegrationError as exc:
        # The reasons of a refused preparation are the dispatcher's own: no provider text.
        logger.warning("integration %s: not probed: %s", integration_id, exc.reason)
        return False
    try:
        answer = await asyncio.wait_for(
            prepared.provider.check(prepared.credentials, prepared.settings, prepared.client),
            PROBE_TIMEOUT,
        )
    except (ProviderError, TimeoutError) as exc:
        logger.info("integration %s: probe failed (%s)", integration_id, type(exc).__name__)
        return False
    except Exception:
        logger.exception("integration %s: the provider's check raised", integration_id)
        return False
    if answer is None:
        return None
    if not answer.ok:
        logger.info("integration %s: probe answered not ok", integration_id)
    return answer.ok

"""The claim of one batch while it works: its send lease renewed, its outcomes written as they come.

A thread of the worker process, beside the batch (which renders on the task's thread, then sends on
the process's event loop), does the database work so that neither waits for it:

* every :data:`FLUSH_INTERVAL` seconds it writes the outcomes finished since, in bulk, so a worker
  killed mid-batch repeats only the sends truly in flight, not the batch's finished ones;
* every third of the send lease it renews the lease of the rows still held, in one UPDATE, so a
  batch that takes longer than the lease is not taken for abandoned by the sweeper; the rows the
  renewal no longer finds (taken over after all, e.g. while this process was stopped) are not
  sent (:meth:`BatchLease.holds`); the batch also reads them once right before it sends
  (:meth:`BatchLease.recheck`), so a delivery cancelled after the claim is not sent.

Renewal and write-back both act only on rows that carry the batch's claim token
(:func:`~dispatcher.sending.store.claim`), so a holder that lost its claim can neither extend it
nor overwrite the outcome of the worker that took it over.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime, timedelta

from dispatcher.config import Settings
from dispatcher.runtime.db import DATABASE_UNAVAILABLE
from dispatcher.runtime.resources import database
from dispatcher.sending.circuit import CircuitView
from dispatcher.sending.execute import Outcome
from dispatcher.sending.plan import Job
from dispatcher.sending.store import (
    BatchReport,
    mark_circuits,
    renew,
    still_held,
    write_outcomes,
)
from models.types import utcnow

logger = logging.getLogger(__name__)

#: Seconds between two writes of finished outcomes: a kill repeats at most this much of the
#: batch's finished sends besides those in flight. Its cost was not measured alone; the blast
#: benchmark with it (README, Performance) ran at 1,193/s against 1,031/s before it.
FLUSH_INTERVAL = 0.25
#: Longest pause between two tries while the database is unreachable.
MAX_RETRY_DELAY = 2.0


class BatchLease:
    """Use as a context manager around the batch's work; :meth:`finish` writes what is left."""

    def __init__(
        self, token: uuid.UUID, ids: list[uuid.UUID], settings: Settings, claimed_at: datetime
    ) -> None:
        self.token = token
        self.settings = settings
        self.report = BatchReport(claimed=len(ids))
        #: Until when the rows are ours for sure: the last claim or renewal that went through.
        self.lease_end = claimed_at + timedelta(seconds=settings.send_lease)
        # Replaced whole by the thread, read by the event loop: no lock needed.
        self._held: frozenset[uuid.UUID] = frozenset(ids)
        self._pending: list[tuple[Job, Outcome]] = []
        self._written: set[uuid.UUID] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batch-lease", daemon=True)

    def __enter__(self) -> BatchLease:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def holds(self, delivery_id: uuid.UUID) -> bool:
        """Still ours at the last renewal: may be sent."""
        return delivery_id in self._held

    def recheck(self) -> None:
        """Read which rows are still held, right before sending: a delivery cancelled since the
        claim (or taken over) is not sent. One indexed read per batch."""
        try:
            with database().session() as session:
                self._held = frozenset(still_held(session, self._held, self.token))
        except DATABASE_UNAVAILABLE as exc:
            # The claim stands; the write-back, which checks the token again, decides.
            logger.warning("deliver: database unavailable (%s) rechecking the batch's rows",
                           type(exc).__name__)  # fmt: skip

    def finished(self, job: Job, outcome: Outcome) -> None:
        """Queue an outcome for the next write."""
        with self._lock:
            self._pending.append((job, outcome))

    def finish(self, circuit: CircuitView) -> BatchReport:
        """Stop the thread, then write what is left, waiting out a database outage while the
        lease holds: these messages are out, and outcomes not written would be sent again once
        the lease passes."""
        self.__exit__()
        delay = 0.5
        while True:
            try:
                self._flush()
                mark_circuits(circuit)
                return self.report
            except DATABASE_UNAVAILABLE as exc:
                if utcnow() + timedelta(seconds=delay) >= self.lease_end:
                    raise
                logger.warning(
                    "deliver: database unavailable (%s) writing %d outcomes; retrying in %gs",
                    type(exc).__name__, len(self._pending), delay,
                )  # fmt: skip
                time.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)

    def _run(self) -> None:
        interval = self.settings.send_lease / 3
        next_renewal = time.monotonic() + interval
        delay = FLUSH_INTERVAL
        while not self._stop.wait(delay):
            try:
                self._flush()
                if time.monotonic() >= next_renewal:
                    self._renew()
                    next_renewal = time.monotonic() + interval
                delay = FLUSH_INTERVAL
            except DATABASE_UNAVAILABLE as exc:
                logger.warning(
                    "deliver: database unavailable (%s) keeping the batch's lease; retrying in %gs",
                    type(exc).__name__, delay,
                )  # fmt: skip
                delay = min(delay * 2, MAX_RETRY_DELAY)

    def _flush(self) -> None:
        with self._lock:
            finished, self._pending = self._pending, []
        if not finished:
            return
        try:
            with database().transaction() as session:
                written = write_outcomes(
                    session, finished, self.token, utcnow(), self.report, self.settings
                )
        except BaseException:
            with self._lock:
                self._pending[:0] = finished
            raise
        self._written |= written

    def _renew(self) -> None:
        now = utcnow()
        with database().transaction() as session:
            held = renew(
                session, self._held - self._written, self.token, self.settings.send_lease, now
            )
        if lost := len(self._held - held - self._written):
            logger.warning("deliver: %d deliveries of this batch were taken over; not sent", lost)
        self._held = frozenset(held)
        self.lease_end = now + timedelta(seconds=self.settings.send_lease)

"""Delivery messages coalesced in the worker: the small batches that wait meet in one batch.

A prefork pool process sends one batch at a time and waits out the provider's latency with it, so
one delivery per message kept a worker of 4 processes at about 23 deliveries/s. This strategy of
the deliver task (Celery's per-task message handler, run by the worker's consumer) sends a
message to the pool at once when a process is free; while all are busy, the messages that arrive
wait in a buffer, and the next free process takes all of them (up to ``delivery_batch_size``
deliveries) as one batch: at low rates every delivery goes alone, at high rates the batches grow
with the rate, like a group commit.

Acknowledgements stay late: each message is acknowledged by the pool's callback once the batch
that carried it finished (its rows written); a process killed mid-batch leaves all of them
unacknowledged and they are requeued (``reject_on_worker_lost``), the outbox sweeper remaining
the backstop. The buffer raises the consumer's prefetch by one per message it holds (as Celery
does for countdown messages), so a buffer of small messages fills while a full batch's worth
stays the most that waits.

The critical lane: critical messages coalesce only with critical ones, and normal batches occupy
at most ``concurrency - critical_reserved_processes`` pool processes, so a critical batch finds a
free process while a blast takes the others, instead of waiting seconds behind a normal batch.
While a full batch of normal messages waits, the worker stops taking more from the delivery
queue, so they cannot fill the prefetch that critical messages arrive through either.

Messages that are not a plain list of ids (a countdown retry takes Celery's own path before it
gets here), and every message when ``delivery_coalescing`` is off, run as ordinary tasks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, Task
from celery.utils.saferepr import saferepr
from celery.worker.request import Request
from celery.worker.strategy import default

from dispatcher.config import Settings, get_settings
from dispatcher.runtime.db import DATABASE_UNAVAILABLE

logger = logging.getLogger(__name__)

#: The pool job's answer when the database was unreachable (a result's repr never reads so): the
#: parent then runs each message as an ordinary task, which retries with backoff.
RETRY_ALONE = "retry-alone"


def strategy(task: Task[Any, Any], app: Celery, consumer: Any, **options: Any) -> Any:
    """Celery's default strategy, with the pool hand-over replaced by a :class:`Coalescer`."""
    settings = get_settings()
    if not settings.delivery_coalescing:
        return default(task, app, consumer, **options)
    coalescer = Coalescer(consumer, settings)
    return default(task, app, _HandingTo(consumer, coalescer.submit), **options)


class _HandingTo:
    """The consumer as the default strategy sees it, but for where it hands requests."""

    def __init__(self, consumer: Any, on_task_request: Callable[[Request], None]) -> None:
        self._consumer = consumer
        self.on_task_request = on_task_request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


@dataclass
class _Waiting:
    request: Request
    ids: list[str]
    #: The prefetch was raised for this message; lowered again once it is acknowledged.
    credit: bool


@dataclass
class _Lane:
    waiting: list[_Waiting] = field(default_factory=list)
    waiting_ids: int = 0
    in_flight: int = 0


class Coalescer:
    """Per worker consumer: the lanes' buffers and the batches each has in the pool. All its
    methods run on the consumer's thread, or on the pool's result thread (thread pools): a lock
    keeps the two apart."""

    def __init__(self, consumer: Any, settings: Settings) -> None:
        self.consumer = consumer
        self.max_ids = settings.delivery_batch_size
        self.critical_queue = settings.critical_queue
        # A worker that does not consume the critical queue (``-Q deliveries``) keeps nothing back.
        consumed = consumer.app.amqp.queues.consume_from or {}
        self.reserved = (
            settings.critical_reserved_processes if self.critical_queue in consumed else 0
        )
        self.delivery_queue = settings.delivery_queue
        self.lanes = {True: _Lane(), False: _Lane()}
        self._lock = threading.RLock()
        #: The consumer this coalescer paused the delivery queue on (a reconnection makes another).
        self._paused: Any = None

    def submit(self, request: Request) -> None:
        ids = _delivery_ids(request)
        if ids is None:
            self.consumer.on_task_request(request)
            return
        critical = request.delivery_info.get("routing_key") == self.critical_queue
        with self._lock:
            lane = self.lanes[critical]
            credit = lane.waiting_ids < self.max_ids
            if credit:
                self.consumer.qos.increment_eventually()
            lane.waiting.append(_Waiting(request, ids, credit))
            lane.waiting_ids += len(ids)
            self._drain()
            self._control_flow()

    def capacity(self, critical: bool) -> int:
        """Batches this lane may have in the pool now."""
        processes = max(1, int(self.consumer.pool.limit or 1))
        busy = self.lanes[True].in_flight + self.lanes[False].in_flight
        if critical:
            return self.lanes[True].in_flight + max(0, processes - busy)
        normal = max(1, processes - self.reserved)
        return min(normal, processes - self.lanes[True].in_flight)

    def _drain(self) -> None:
        for critical in (True, False):
            lane = self.lanes[critical]
            while lane.waiting and lane.in_flight < self.capacity(critical):
                self._dispatch(critical, self._take(lane))

    def _take(self, lane: _Lane) -> list[_Waiting]:
        taken = [lane.waiting.pop(0)]
        size = len(taken[0].ids)
        while lane.waiting and size + len(lane.waiting[0].ids) <= self.max_ids:
            size += len(lane.waiting[0].ids)
            taken.append(lane.waiting.pop(0))
        lane.waiting_ids -= size
        return taken

    def _dispatch(self, critical: bool, batch: list[_Waiting]) -> None:
        self.lanes[critical].in_flight += 1
        ids = list(dict.fromkeys(item for waiting in batch for item in waiting.ids))

        def accepted(pid: Any, time_accepted: float) -> None:
            for waiting in batch:
                waiting.request.on_accepted(pid, time_accepted)

        def succeeded(result: tuple[int, str, float]) -> None:
            self._finished(critical, batch)
            if result[1] == RETRY_ALONE:
                for waiting in batch:
                    self.consumer.on_task_request(waiting.request)
                return
            for waiting in batch:
                waiting.request.on_success(result)

        def failed(exc_info: Any) -> None:
            # The process died (or the job could not run): each message is requeued or
            # failed by Celery's own rules for a lost worker.
            self._finished(critical, batch)
            for waiting in batch:
                waiting.request.on_failure(exc_info)

        self.consumer.pool.apply_async(
            send_coalesced,
            args=(ids,),
            accept_callback=accepted,
            callback=succeeded,
            error_callback=failed,
            correlation_id=batch[0].request.id,
        )

    def _finished(self, critical: bool, batch: list[_Waiting]) -> None:
        with self._lock:
            self.lanes[critical].in_flight -= 1
            credits = sum(1 for waiting in batch if waiting.credit)
            if credits:
                self.consumer.qos.decrement_eventually(credits)
            self._drain()
            self._control_flow()

    def _control_flow(self) -> None:
        """Stop taking normal messages while a full batch of them waits, resume below it.

        Normal and critical messages share the consumer's prefetch: normal ones held beyond a
        batch's worth would fill it during a blast, and a critical message could not even be
        received until a normal batch finished.
        """
        if not self.reserved:
            return
        consumer = self.consumer.task_consumer
        full = self.lanes[False].waiting_ids >= self.max_ids
        if full and self._paused is None:
            consumer.cancel_by_queue(self.delivery_queue)
            self._paused = consumer
        elif not full and self._paused is not None:
            if self._paused is consumer:
                consumer.add_queue(self.consumer.app.amqp.queues[self.delivery_queue])
                consumer.consume()
            self._paused = None


def _delivery_ids(request: Request) -> list[str] | None:
    """The ids of a plain deliver message, or None for anything else (it runs as a task)."""
    kwargs = request.kwargs
    if request.args or not isinstance(kwargs, dict) or set(kwargs) != {"delivery_ids"}:
        return None
    ids = kwargs["delivery_ids"]
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        return None
    return ids


def send_coalesced(delivery_ids: list[str]) -> tuple[int, str, float]:
    """The pool job: one batch for the messages' ids, answered like Celery's tracer does
    (``(failed, repr of the result, runtime)``); every message carries the batch's report."""
    from dispatcher.tasks.deliveries import finish_batch  # noqa: PLC0415 - the task imports us

    started = time.monotonic()
    try:
        result = saferepr(finish_batch(delivery_ids))
    except DATABASE_UNAVAILABLE as exc:
        logger.warning(
            "deliver: database unavailable (%s); messages retried alone", type(exc).__name__
        )
        result = RETRY_ALONE
    except Exception:
        logger.exception("deliver: batch failed unexpectedly; the sweeper will take it again")
        result = saferepr({"error": "unexpected failure"})
    return 0, result, time.monotonic() - started

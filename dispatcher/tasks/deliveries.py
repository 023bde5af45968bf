"""Delivery tasks: send a batch, pump the outbox in fair rounds, sweep what is due (beat)."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from typing import Any

from amqp.exceptions import ChannelError
from celery import Task
from kombu.exceptions import OperationalError as BrokerError

from dispatcher.actions.runner import DATABASE_UNAVAILABLE
from dispatcher.celery_app import app
from dispatcher.config import get_settings
from dispatcher.outbox import DELIVER_TASK, PUMP_TASK, queue_for, sweep
from dispatcher.sending.batch import BatchReport, process_batch

logger = logging.getLogger(__name__)

SWEEP_TASK = "dispatcher.sweep_outbox"
#: Delivery messages allowed to wait in the queue before the pump holds back its next round.
PUMP_QUEUE_TARGET = 20


@app.task(
    name=DELIVER_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def deliver(self: Task[Any, Any], delivery_ids: Any = None) -> dict[str, Any]:
    """Send a batch of deliveries (ids only: content and credentials are read by the worker)."""
    if not isinstance(delivery_ids, list):
        logger.error("deliver: rejected a message without a list of delivery ids")
        return {"error": "delivery_ids must be a list"}
    try:
        report = process_batch([str(item) for item in delivery_ids])
    except DATABASE_UNAVAILABLE as exc:
        # Claimed rows stay reserved; if retries run out the sweeper takes them after the lease.
        retries = self.request.retries
        if retries >= get_settings().action_max_retries:
            logger.error("deliver: database unavailable after %d retries", retries)
            return {"error": "database unavailable"}
        logger.warning("deliver: database unavailable (%s), retrying", type(exc).__name__)
        raise self.retry(countdown=min(60, 2**retries), max_retries=None, exc=None) from None
    except Exception:
        logger.exception("deliver: batch failed unexpectedly; the sweeper will take it again")
        return {"error": "unexpected failure"}
    schedule_retries(report)
    return report.as_dict()


def schedule_retries(report: BatchReport) -> None:
    settings = get_settings()
    groups: dict[tuple[int, bool], list[str]] = defaultdict(list)
    for delivery_id, delay, critical in report.retrying:
        if delay <= settings.retry_countdown_limit:
            groups[(math.ceil(delay), critical)].append(str(delivery_id))
    try:
        for (countdown, critical), ids in groups.items():
            for start in range(0, len(ids), settings.delivery_batch_size):
                app.send_task(
                    DELIVER_TASK,
                    kwargs={"delivery_ids": ids[start : start + settings.delivery_batch_size]},
                    queue=queue_for(critical, settings),
                    countdown=countdown,
                )
    except BrokerError:
        logger.warning("deliver: broker unavailable; retries are left to the outbox sweeper")


def queue_depth(queue: str) -> int:
    with app.connection_for_read() as connection:
        channel: Any = connection.default_channel
        try:
            declared = channel.queue_declare(queue=queue, passive=True)
        except ChannelError:
            return 0  # Redis drops the key of an empty list: no queue is an empty queue
        return int(declared.message_count)


@app.task(name=PUMP_TASK, ignore_result=True)
def pump_outbox() -> dict[str, Any]:
    """Feed due deliveries to the broker in rounds, one batch per organisation in turn."""
    settings = get_settings()
    depth = queue_depth(settings.delivery_queue)
    if depth <= PUMP_QUEUE_TARGET:
        report = sweep(settings)
        enqueued = report.enqueued
    else:
        enqueued = 0
    if enqueued or depth > PUMP_QUEUE_TARGET:
        app.send_task(PUMP_TASK, queue=settings.delivery_queue, countdown=0.5 if enqueued else 1.0)
    return {"enqueued": enqueued, "queue_depth": depth}


@app.task(name=SWEEP_TASK, ignore_result=True)
def sweep_outbox() -> dict[str, Any]:
    """Beat: re-enqueue deliveries whose time has come (delays, retries, lost messages)."""
    settings = get_settings()
    # Behind a backlog, reservations run out while their messages still wait in the queue:
    # enqueueing those deliveries again would pile duplicates onto the backlog (measured: four
    # messages per delivery in a soak). Critical ones are swept regardless.
    backlog = queue_depth(settings.delivery_queue) > PUMP_QUEUE_TARGET
    report = sweep(settings, critical_only=backlog)
    if report.recovered_sends:
        logger.warning(
            "sweep: %d deliveries were being sent by a worker that stopped", report.recovered_sends
        )
    return {"enqueued": report.enqueued, "batches": report.batches}

"""Delivery tasks: send a batch, pump the outbox in fair rounds, sweep what is due (beat)."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from dispatcher.celery_app import app, batch_finished
from dispatcher.config import get_settings
from dispatcher.lifecycle.routing import fail_over_timed_out
from dispatcher.notifications.enqueue import (
    DELIVER_TASK,
    PUMP_TASK,
    WEBHOOK_EVENTS_TASK,
    kick_pump,
    publish_retries,
    publish_webhook_events,
    queue_depth,
    sweep,
    sweep_webhook_events,
)
from dispatcher.runtime.db import DATABASE_UNAVAILABLE
from dispatcher.sending.batch import process_batch
from dispatcher.sending.webhook_posting import process_events
from dispatcher.tasks.retrying import DATABASE_RETRY, DatabaseUnavailableError, retries_spent

logger = logging.getLogger(__name__)

SWEEP_TASK = "dispatcher.sweep_outbox"
#: Delivery messages allowed to wait in the queue before the pump holds back its next round.
PUMP_QUEUE_TARGET = 20


@app.task(
    name=DELIVER_TASK,
    bind=True,
    # Small messages waiting for a pool process are sent together (dispatcher.tasks.coalescing).
    Strategy="dispatcher.tasks.coalescing:strategy",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    **DATABASE_RETRY,
)
def deliver(self: Task[Any, Any], delivery_ids: Any = None) -> dict[str, Any]:
    """Send a batch of deliveries (ids only: content and credentials are read by the worker)."""
    if not isinstance(delivery_ids, list):
        logger.error("deliver: rejected a message without a list of delivery ids")
        return {"error": "delivery_ids must be a list"}
    try:
        return finish_batch([str(item) for item in delivery_ids])
    except DATABASE_UNAVAILABLE as exc:
        # Claimed rows stay reserved; if retries run out the sweeper takes them after the lease.
        if retries_spent(self):
            logger.error("deliver: database unavailable after %d retries", self.request.retries)
            return {"error": "database unavailable"}
        logger.warning("deliver: database unavailable (%s), retrying", type(exc).__name__)
        raise DatabaseUnavailableError(type(exc).__name__) from None
    except Exception:
        logger.exception("deliver: batch failed unexpectedly; the sweeper will take it again")
        return {"error": "unexpected failure"}


def finish_batch(delivery_ids: list[str]) -> dict[str, Any]:
    """Send the batch, then tell the metrics and schedule its short retries."""
    report = process_batch(delivery_ids)
    batch_finished.send(sender=deliver, report=report)
    # Deliveries a fetch step made due go to the broker the way short retries do.
    publish_retries([*report.retrying, *report.released], get_settings())
    publish_webhook_events(report.webhook_events, get_settings())
    return report.as_dict()


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
        kick_pump(settings, countdown=0.5 if enqueued else 1.0)
    return {"enqueued": enqueued, "queue_depth": depth}


@app.task(name=SWEEP_TASK, ignore_result=True)
def sweep_outbox() -> dict[str, Any]:
    """Beat: re-enqueue deliveries whose time has come (delays, retries, lost messages), and
    fail over the sends not reported delivered in time."""
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
    # Sends whose window for a ``delivered`` report passed (status-driven routing).
    failed_over = fail_over_timed_out(settings)
    webhook_events = sweep_webhook_events(settings)
    return {
        "enqueued": report.enqueued, "batches": report.batches, "failed_over": failed_over,
        "webhook_events": webhook_events,
    }  # fmt: skip


@app.task(
    name=WEBHOOK_EVENTS_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    **DATABASE_RETRY,
)
def deliver_webhook_events(self: Task[Any, Any], event_ids: Any = None) -> dict[str, Any]:
    """Post a batch of outbound webhook events (ids only: bodies and secrets are read here)."""
    if not isinstance(event_ids, list):
        logger.error("deliver_webhook_events: rejected a message without a list of event ids")
        return {"error": "event_ids must be a list"}
    try:
        return process_events([str(item) for item in event_ids]).as_dict()
    except DATABASE_UNAVAILABLE as exc:
        if retries_spent(self):
            logger.error("deliver_webhook_events: database unavailable after retries")
            return {"error": "database unavailable"}
        raise DatabaseUnavailableError(type(exc).__name__) from None
    except Exception:
        logger.exception("deliver_webhook_events: batch failed; the sweeper will take it again")
        return {"error": "unexpected failure"}

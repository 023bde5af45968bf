"""The task that applies provider callbacks' events (:mod:`dispatcher.lifecycle.apply`).

It runs on its own queue (``DISPATCHER_LIFECYCLE_QUEUE``). A message carries the verified
events of one or more callbacks (no credential, no raw body); a message that cannot be read is
logged and dropped, never retried: it would not read better later. A lost database is retried
like any task's; events for messages not known yet go back with a countdown (see
:mod:`dispatcher.lifecycle.apply`).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from kombu.exceptions import OperationalError as BrokerError

from dispatcher.celery_app import APPLY_EVENTS_TASK, app
from dispatcher.config import get_settings
from dispatcher.lifecycle.apply import apply_callbacks
from dispatcher.notifications.enqueue import publish_delivery_events, publish_webhook_events
from dispatcher.observability.metrics import record_callback_events
from dispatcher.runtime.db import DATABASE_UNAVAILABLE
from dispatcher.tasks.retrying import DATABASE_RETRY, DatabaseUnavailableError, retries_spent

logger = logging.getLogger(__name__)


@app.task(
    name=APPLY_EVENTS_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    **DATABASE_RETRY,
)
def apply_delivery_events(self: Task[Any, Any], callbacks: Any = None) -> dict[str, Any]:
    """Apply the events of a list of callbacks in one transaction."""
    if not isinstance(callbacks, list):
        logger.error("lifecycle: rejected a message without a list of callbacks")
        return {"error": "callbacks must be a list"}
    try:
        report = apply_callbacks(callbacks)
    except DATABASE_UNAVAILABLE as exc:
        if retries_spent(self):
            logger.error("lifecycle: database unavailable after %d retries; events dropped",
                         self.request.retries)  # fmt: skip
            return {"error": "database unavailable"}
        logger.warning("lifecycle: database unavailable (%s), retrying", type(exc).__name__)
        raise DatabaseUnavailableError(type(exc).__name__) from None
    record_callback_events(report.by_provider_kind)
    settings = get_settings()
    publish_webhook_events(report.webhook_events, settings)
    for delay, later in report.later:
        try:
            publish_delivery_events(later, settings, countdown=delay)
        except BrokerError:
            logger.warning("lifecycle: broker unavailable; %d events for unknown messages "
                           "dropped", sum(len(c["events"]) for c in later))  # fmt: skip
    return report.as_dict()

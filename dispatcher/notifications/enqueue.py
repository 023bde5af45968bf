"""Handing work to the broker: the only module that calls ``send_task``.

Triggers publish their due batches right after their commit, the pump and the sweeper enqueue what
the outbox reserved, and a batch's short retries are published with a countdown. Every message
carries delivery ids only, never content or credentials (the one other kind, a provider
callback's verified events, carries the events as plain JSON: ids, kinds, times, addresses).
When the broker is unreachable nothing is lost: the rows stay in the outbox and the sweeper
enqueues them later.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from amqp.exceptions import ChannelError
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import event as _sa_event
from sqlalchemy.orm import Session

from dispatcher.celery_app import APPLY_EVENTS_TASK, app
from dispatcher.config import Settings, get_settings
from dispatcher.notifications.outbox import DueBatch, SweepReport, chunks, release, reserve_due
from dispatcher.sending.webhook_posting import reserve_due as reserve_due_events

logger = logging.getLogger(__name__)
listen = _sa_event.listen

DELIVER_TASK = "dispatcher.deliver"
PUMP_TASK = "dispatcher.pump_outbox"
#: Posts a batch of outbound webhook events (``dispatcher.sending.webhook_posting``).
WEBHOOK_EVENTS_TASK = "dispatcher.deliver_webhook_events"


def queue_for(critical: bool, settings: Settings) -> str:
    return settings.critical_queue if critical else settings.delivery_queue


def ids_repr(ids: Sequence[object]) -> str:
    """What Flower and the worker's log show of a batch's arguments: its size and first id.
    Given to ``send_task`` as ``kwargsrepr``, it also spares Celery's ``saferepr`` of up to
    ``delivery_batch_size`` ids (a sixth of a publish's time)."""
    first = f", first {ids[0]}" if ids else ""
    return f"{{'delivery_ids': <{len(ids)} ids{first}>}}"


def send_batches(batches: Sequence[tuple[bool, list[uuid.UUID]]], settings: Settings) -> None:
    with app.producer_or_acquire() as producer:
        for critical, ids in batches:
            app.send_task(
                DELIVER_TASK,
                kwargs={"delivery_ids": [str(item) for item in ids]},
                kwargsrepr=ids_repr(ids),
                queue=queue_for(critical, settings),
                producer=producer,
                # No result is kept: without this the producer subscribes to a result channel
                # per message (a leak, and a 20 s stall on a broker outage).
                ignore_result=True,
            )


def publish_due(organisation: uuid.UUID, due: Sequence[DueBatch], settings: Settings) -> None:
    """Right after a trigger's commit: the events' due deliveries, critical and normal apart,
    in messages of up to ``delivery_batch_size`` (many single-recipient events of one commit
    make one message, not one each: every message costs the worker a few broker round trips)."""
    lanes: dict[bool, list[uuid.UUID]] = {True: [], False: []}
    for entry in due:
        lanes[entry.critical].extend(entry.ids)
    batches = [
        (critical, ids)
        for critical, lane in lanes.items()
        for ids in chunks(lane, settings.delivery_batch_size)
    ]
    try:
        send_batches(batches, settings)
        if any(entry.pump for entry in due):
            kick_pump(settings)
    except BrokerError:
        # The rows are committed; make them due now so the next sweep sends them.
        logger.warning("broker unavailable: %d batches left to the outbox sweeper", len(batches))
        release([item for _, ids in batches for item in ids])


def sweep(
    settings: Settings | None = None,
    *,
    per_organisation: int | None = None,
    critical_only: bool = False,
) -> SweepReport:
    """Reserve and enqueue due deliveries, interleaving organisations batch by batch."""
    settings = settings or get_settings()
    report = reserve_due(settings, per_organisation=per_organisation, critical_only=critical_only)
    send_batches(report.ordered, settings)
    return report


def kick_pump(settings: Settings, *, countdown: float | None = None) -> None:
    app.send_task(PUMP_TASK, queue=settings.delivery_queue, countdown=countdown, ignore_result=True)


def publish_retries(retrying: Iterable[tuple[uuid.UUID, float, bool]], settings: Settings) -> None:
    """Retries due within ``retry_countdown_limit`` go back to the broker with a countdown; later
    ones (and all of them when the broker is down) are left to the outbox sweeper."""
    groups: dict[tuple[int, bool], list[str]] = defaultdict(list)
    for delivery_id, delay, critical in retrying:
        if delay <= settings.retry_countdown_limit:
            groups[(math.ceil(delay), critical)].append(str(delivery_id))
    try:
        for (countdown, critical), ids in groups.items():
            for start in range(0, len(ids), settings.delivery_batch_size):
                batch = ids[start : start + settings.delivery_batch_size]
                app.send_task(
                    DELIVER_TASK,
                    kwargs={"delivery_ids": batch},
                    kwargsrepr=ids_repr(batch),
                    queue=queue_for(critical, settings),
                    countdown=countdown,
                )
    except BrokerError:
        logger.warning("deliver: broker unavailable; retries are left to the outbox sweeper")


def publish_delivery_events(
    callbacks: list[dict[str, Any]], settings: Settings, *, countdown: float | None = None
) -> None:
    """Verified callbacks' events for the lifecycle worker (``dispatcher.tasks.lifecycle``).

    Raises the broker's error: the API then answers 503 and the provider calls again, since
    nothing else holds the events."""
    app.send_task(
        APPLY_EVENTS_TASK,
        kwargs={"callbacks": callbacks},
        queue=settings.lifecycle_queue,
        countdown=countdown,
        ignore_result=True,
    )


def publish_webhook_events(ids: Sequence[uuid.UUID], settings: Settings) -> None:
    """Right after their commit: outbound webhook events to post, on the delivery queue, in
    messages of up to ``delivery_batch_size``. Broker down: the sweeper sends them once their
    reservation (``enqueue_lease``) ran out."""
    if not ids:
        return
    try:
        with app.producer_or_acquire() as producer:
            for chunk in chunks(ids, settings.delivery_batch_size):
                app.send_task(
                    WEBHOOK_EVENTS_TASK,
                    kwargs={"event_ids": [str(item) for item in chunk]},
                    queue=settings.delivery_queue,
                    producer=producer,
                    ignore_result=True,
                )
    except BrokerError:
        logger.warning("broker unavailable: %d webhook events left to the sweeper", len(ids))


def publish_after_commit(session: Session, ids: Sequence[uuid.UUID]) -> None:
    """Hand ``ids`` (outbound webhook events written in ``session``) to the broker once the
    session commits; a rollback takes them back with the change they report."""
    if ids:
        settings = get_settings()
        listen(session, "after_commit", lambda _: publish_webhook_events(ids, settings), once=True)


def sweep_webhook_events(settings: Settings) -> int:
    """Beat: hand the due outbound webhook events to the broker; answers how many."""
    batches = reserve_due_events(settings)
    publish_webhook_events([item for batch in batches for item in batch], settings)
    return sum(len(batch) for batch in batches)


def queue_depth(queue: str) -> int:
    with app.connection_for_read() as connection:
        channel: Any = connection.default_channel
        try:
            declared = channel.queue_declare(queue=queue, passive=True)
        except ChannelError:
            return 0  # Redis drops the key of an empty list: no queue is an empty queue
        return int(declared.message_count)

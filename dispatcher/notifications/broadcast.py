"""A trigger for every subscriber of the organisation, written in chunks.

One transaction of millions of rows would hold locks and memory for minutes and lose everything
on a failure, so the subscribers are read in keyset order (by row id) and each chunk of
``DISPATCHER_BROADCAST_CHUNK_SIZE`` is written in a transaction of its own and handed to the
broker (or, for a large chunk, to the outbox pump) before the next is read. Every chunk carries
the broadcast's one transaction id, so the whole broadcast can be read back and cancelled as one.

A repeat with the same transaction id is the resumption of the same broadcast: subscribers who
already have a notification of it are left out, so a broadcast cut short (a crash, an outage)
is completed by sending it again, and a finished one creates nothing new. Erased subscribers'
tombstones are left out. Subscribers created
while it runs are included when their row id sorts after the chunk being written.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dispatcher.config import Settings, get_settings
from dispatcher.errors import TriggerError, field_errors
from dispatcher.notifications.enqueue import publish_due
from dispatcher.notifications.erasure import not_erased
from dispatcher.notifications.events import TriggerEvent
from dispatcher.notifications.outbox import DueBatch
from dispatcher.notifications.triggers import TriggerReceipt, check_workflow, write_event
from dispatcher.runtime.resources import database
from models import Notification, Subscriber
from models.bulk import among

#: Placeholder recipient of the validated template event; each chunk replaces it.
_ANYONE = "*"


def trigger_broadcast(
    organisation_id: uuid.UUID,
    workflow: str,
    payload: dict[str, Any] | None = None,
    *,
    transaction_id: str | None = None,
    actor: dict[str, Any] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> TriggerReceipt:
    """Notify every subscriber of the organisation through ``workflow``; answers the count of
    deliveries written by this call (``duplicate`` when there was no one left to notify)."""
    settings = get_settings()
    raw: dict[str, Any] = {"workflow": workflow, "to": [_ANYONE], "payload": payload or {}}
    optional = {"transaction_id": transaction_id, "actor": actor, "overrides": overrides}
    raw.update({name: value for name, value in optional.items() if value is not None})
    try:
        template = TriggerEvent.model_validate(raw)
    except ValidationError as exc:
        raise TriggerError(field_errors(exc)) from None
    with database().session() as session:
        check_workflow(session, organisation_id, template)
        already = session.scalar(
            select(Notification.id)
            .where(
                Notification.organisation_id == organisation_id,
                Notification.transaction_id == template.transaction_id,
            )
            .limit(1)
        )
    after: uuid.UUID | None = None
    deliveries = 0
    while True:
        try:
            written = _write_chunk(organisation_id, template, after, settings)
        except IntegrityError:
            # The same broadcast resumed concurrently wrote some of these subscribers first:
            # the chunk is read again and only the others are written.
            written = _write_chunk(organisation_id, template, after, settings)
        if written is None:
            break
        after, receipt, due = written
        deliveries += receipt.deliveries
        if due is not None:
            publish_due(organisation_id, [due], settings)
    return TriggerReceipt(
        template.transaction_id, [], deliveries, duplicate=already is not None and not deliveries
    )


def _write_chunk(
    organisation_id: uuid.UUID, template: TriggerEvent, after: uuid.UUID | None, settings: Settings
) -> tuple[uuid.UUID, TriggerReceipt, DueBatch | None] | None:
    """The next chunk of subscribers after ``after`` written in one transaction; ``None`` when
    there is none left."""
    with database().transaction() as session:
        query = (
            select(Subscriber.id, Subscriber.external_id)
            .where(Subscriber.organisation_id == organisation_id, not_erased())
            .order_by(Subscriber.id)
            .limit(settings.broadcast_chunk_size)
        )
        if after is not None:
            query = query.where(Subscriber.id > after)
        chunk = session.execute(query).all()
        if not chunk:
            return None
        notified = _notified(session, organisation_id, template.transaction_id, chunk)
        recipients = [row.external_id for row in chunk if row.id not in notified]
        if not recipients:
            return chunk[-1].id, TriggerReceipt(template.transaction_id, [], 0), None
        event = template.model_copy(update={"to": recipients})
        receipt, due = write_event(session, organisation_id, event, settings, continuing=True)
    return chunk[-1].id, receipt, due


def _notified(
    session: Session, organisation_id: uuid.UUID, transaction_id: str, chunk: Sequence[Any]
) -> set[uuid.UUID]:
    ids = [row.id for row in chunk]
    return set(
        session.scalars(
            select(Notification.subscriber_id).where(
                Notification.organisation_id == organisation_id,
                Notification.transaction_id == transaction_id,
                among(session, Notification.subscriber_id, ids),
            )
        )
    )

"""Provider events applied in bulk: one transaction per batch of callbacks, a few statements.

For a batch (the events of one or more callbacks, as :mod:`~dispatcher.lifecycle.receive` put
them on the broker):

1. the deliveries are found by ``(integration, provider message id)``, locked, in id order (two
   batches touching the same deliveries wait for each other instead of deadlocking); an event for
   a message no delivery has is tried again a few times (:data:`UNKNOWN_RETRY_DELAYS`: a fast
   provider's callback can arrive before the worker that sent the message wrote its id back),
   then logged at INFO and dropped (sent by something else, or already purged: retrying it for
   ever would never find one);
2. the events are inserted into ``delivery_events`` with ``ON CONFLICT DO NOTHING`` on
   ``(integration_id, event_id)``: a replayed event (providers retry what they think failed) is
   applied once, and only the rows actually inserted go on;
3. each delivery's ``reported_status`` moves by :data:`models.REPORTED_RANK`: a higher rank
   always wins, within a rank the later event (out-of-order callbacks end where the latest says);
4. hard bounces, complaints and events the provider marks ``suppress`` write a suppression of
   the address (the event's recipient, else the subscriber's address for the channel);
5. sends waiting for a ``delivered`` report are confirmed or failed over
   (:mod:`~dispatcher.lifecycle.routing`);
6. each event applied for the first time writes its outbound webhook event
   (:mod:`~dispatcher.sending.webhook_events`) for the endpoints subscribed to it.

An event for the message of an earlier send of a delivery (one failed over since) is found
through its watch, recorded, suppresses and is posted to the organisation's endpoints as any,
but moves neither the delivery's reported status nor its routing.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dispatcher.config import get_settings
from dispatcher.lifecycle.routing import Reported, earlier_sends, route_reported
from dispatcher.runtime.resources import database
from dispatcher.sending.webhook_events import REPORTED_EVENTS, Change, emit
from models import (
    REPORTED_RANK,
    ChannelType,
    Delivery,
    DeliveryEventRecord,
    Notification,
    ReportedStatus,
    Subscriber,
    Suppression,
    normalize_address,
)
from models.ids import new_row_id
from models.types import utcnow
from providers.callbacks import BounceKind, DeliveryEvent, DeliveryEventKind

logger = logging.getLogger(__name__)

#: Seconds after which events for messages no delivery has are tried again, one per retry.
UNKNOWN_RETRY_DELAYS = (2.0, 10.0, 60.0)
#: Event rows per INSERT (PostgreSQL takes at most 65,535 parameters in a statement).
INSERT_CHUNK = 1000
#: Characters of a suppression's reason kept.
MAX_SUPPRESSION_REASON = 500


@dataclass(frozen=True)
class Incoming:
    integration_id: uuid.UUID
    organisation_id: uuid.UUID
    provider: str
    event: DeliveryEvent
    #: How often this event was already tried for a message no delivery had.
    retry: int = 0


@dataclass
class ApplyReport:
    applied: int = 0
    duplicates: int = 0
    unknown: int = 0
    invalid: int = 0
    suppressed: int = 0
    #: (provider, kind) -> events applied, for the metrics.
    by_provider_kind: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (delay, callback messages) of events for unknown messages to be tried again.
    later: list[tuple[float, list[dict[str, Any]]]] = field(default_factory=list)
    #: Outbound webhook events written with the events, to hand to the broker.
    webhook_events: list[uuid.UUID] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "applied": self.applied, "duplicates": self.duplicates, "unknown": self.unknown,
            "invalid": self.invalid, "suppressed": self.suppressed,
        }  # fmt: skip


def read_callbacks(callbacks: list[Any], report: ApplyReport) -> list[Incoming]:
    """The broker's messages back into events; a malformed one is counted and skipped."""
    incoming: list[Incoming] = []
    for callback in callbacks:
        try:
            integration_id = uuid.UUID(str(callback["integration_id"]))
            organisation_id = uuid.UUID(str(callback["organisation_id"]))
            provider = str(callback["provider"])
            events = [DeliveryEvent.model_validate(item) for item in callback["events"]]
            retry = int(callback.get("retry", 0))
        except (KeyError, TypeError, ValueError, ValidationError):
            logger.error("lifecycle: skipped a callback message that is not one this API sent")
            report.invalid += 1
            continue
        incoming += [Incoming(integration_id, organisation_id, provider, e, retry) for e in events]
    return incoming


def apply_callbacks(callbacks: list[Any]) -> ApplyReport:
    """Apply the events of ``callbacks`` in one transaction."""
    report = ApplyReport()
    incoming = read_callbacks(callbacks, report)
    if incoming:
        with database().transaction() as session:
            apply_events(session, incoming, report)
    return report


@dataclass
class _Target:
    delivery_id: uuid.UUID
    organisation_id: uuid.UUID
    channel: ChannelType | None
    status: ReportedStatus | None
    at: datetime | None
    email: str | None
    phone: str | None
    changed: bool = False
    #: Found by the message id of an earlier send: its events do not move the delivery.
    earlier: bool = False
    notification_id: uuid.UUID | None = None


def apply_events(session: Session, incoming: list[Incoming], report: ApplyReport) -> None:
    targets = _targets(session, incoming)
    found: list[tuple[Incoming, _Target]] = []
    unknown: list[Incoming] = []
    for item in incoming:
        target = targets.get((item.integration_id, item.event.provider_message_id))
        if target is None or target.organisation_id != item.organisation_id:
            unknown.append(item)
            continue
        found.append((item, target))
    _defer_unknown(unknown, report)
    fresh = _insert_events(session, found)
    report.duplicates += len(found) - len(fresh)
    suppressions: dict[tuple[uuid.UUID, ChannelType, str], dict[str, Any]] = {}
    for item, target in fresh:
        report.applied += 1
        report.by_provider_kind[(item.provider, item.event.kind.value)] += 1
        if not target.earlier:
            _fold(target, item.event)
        row = _suppression(item, target)
        if row is not None:
            suppressions.setdefault(
                (row["organisation_id"], row["channel_type"], row["address"]), row
            )
    changed = [t for t in targets.values() if t.changed]
    if changed:
        session.execute(
            update(Delivery),
            [{"id": t.delivery_id, "reported_status": t.status, "reported_at": t.at}
             for t in changed],
        )  # fmt: skip
    if suppressions:
        statement = _insert(session, Suppression).values(list(suppressions.values()))
        result = session.execute(
            statement.on_conflict_do_nothing(
                index_elements=["organisation_id", "channel_type", "address"]
            ).returning(Suppression.id)
        )
        report.suppressed += len(result.all())
    route_reported(
        session,
        [Reported(item.integration_id, item.event) for item, target in fresh if not target.earlier],
        get_settings(),
    )
    report.webhook_events += emit(session, _changes(fresh))


def _changes(fresh: list[tuple[Incoming, _Target]]) -> list[Change]:
    """One outbound webhook event per event applied for the first time (a replayed callback
    makes none); ``complained`` has no event type."""
    changes: list[Change] = []
    for item, target in fresh:
        kind = REPORTED_EVENTS.get(ReportedStatus(item.event.kind.value))
        if kind is None or target.notification_id is None:
            continue
        changes.append(
            Change(
                target.organisation_id, kind, target.notification_id, target.delivery_id,
                target.channel, item.event.kind.value, item.event.reason,
            )
        )  # fmt: skip
    return changes


def _defer_unknown(unknown: list[Incoming], report: ApplyReport) -> None:
    """Events for messages no delivery has: tried again later, or dropped after the last try."""
    report.unknown += len(unknown)
    groups: dict[tuple[int, uuid.UUID, uuid.UUID, str], list[DeliveryEvent]] = {}
    for item in unknown:
        if item.retry >= len(UNKNOWN_RETRY_DELAYS):
            logger.info(
                "lifecycle: %s event for message %r of integration %s: no such delivery; dropped",
                item.event.kind.value, item.event.provider_message_id, item.integration_id,
            )  # fmt: skip
            continue
        logger.info(
            "lifecycle: %s event for message %r of integration %s: no such delivery yet; "
            "tried again in %g s",
            item.event.kind.value, item.event.provider_message_id, item.integration_id,
            UNKNOWN_RETRY_DELAYS[item.retry],
        )  # fmt: skip
        key = (item.retry, item.integration_id, item.organisation_id, item.provider)
        groups.setdefault(key, []).append(item.event)
    by_delay: dict[float, list[dict[str, Any]]] = {}
    for (retry, integration_id, organisation_id, provider), events in groups.items():
        by_delay.setdefault(UNKNOWN_RETRY_DELAYS[retry], []).append(
            {
                "integration_id": str(integration_id), "organisation_id": str(organisation_id),
                "provider": provider, "retry": retry + 1,
                "events": [event.model_dump(mode="json") for event in events],
            }
        )  # fmt: skip
    report.later += sorted(by_delay.items())


def _targets(session: Session, incoming: list[Incoming]) -> dict[tuple[uuid.UUID, str], _Target]:
    pairs = sorted({(i.integration_id, i.event.provider_message_id) for i in incoming})
    targets: dict[tuple[uuid.UUID, str], _Target] = {}
    rows = session.execute(
        select(
            Delivery.id, Delivery.organisation_id, Delivery.integration_id,
            Delivery.provider_message_id, Delivery.channel_type, Delivery.reported_status,
            Delivery.reported_at, Subscriber.email, Subscriber.phone, Delivery.notification_id,
        )
        .join(Notification, Notification.id == Delivery.notification_id)
        .join(Subscriber, Subscriber.id == Notification.subscriber_id)
        .where(tuple_(Delivery.integration_id, Delivery.provider_message_id).in_(pairs))
        .order_by(Delivery.id)
        .with_for_update(of=Delivery)
    )  # fmt: skip
    row: Any
    for row in rows:
        key = (row.integration_id, row.provider_message_id)
        targets[key] = _Target(
            row.id, row.organisation_id, row.channel_type, row.reported_status, row.reported_at,
            row.email, row.phone, notification_id=row.notification_id,
        )  # fmt: skip
    for row in earlier_sends(session, [pair for pair in pairs if pair not in targets]):
        key = (row.integration_id, row.provider_message_id)
        targets[key] = _Target(
            row.id, row.organisation_id, row.channel_type, row.reported_status, row.reported_at,
            row.email, row.phone, earlier=True, notification_id=row.notification_id,
        )  # fmt: skip
    return targets


def _insert(session: Session, table: type[Any]) -> Any:
    """``INSERT`` of the session's dialect, which has ``ON CONFLICT``."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _insert_events(
    session: Session, found: list[tuple[Incoming, _Target]]
) -> list[tuple[Incoming, _Target]]:
    """Insert the events not seen before; the value is those inserted, in the given order."""
    unique: dict[tuple[uuid.UUID, str], tuple[Incoming, _Target]] = {}
    for item, target in found:
        unique.setdefault((item.integration_id, item.event.event_id), (item, target))
    if not unique:
        return []
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "id": new_row_id(), "organisation_id": target.organisation_id,
            "delivery_id": target.delivery_id, "integration_id": item.integration_id,
            "kind": ReportedStatus(item.event.kind.value), "occurred_at": item.event.occurred_at,
            "event_id": item.event.event_id,
            "bounce": item.event.bounce.value if item.event.bounce else None,
            "reason": item.event.reason, "url": item.event.url, "meta": {}, "created_at": now,
        }
        for item, target in unique.values()
    ]  # fmt: skip
    kept: set[tuple[uuid.UUID, str]] = set()
    for start in range(0, len(rows), INSERT_CHUNK):
        statement = _insert(session, DeliveryEventRecord).values(rows[start : start + INSERT_CHUNK])
        inserted = session.execute(
            statement.on_conflict_do_nothing(
                index_elements=["integration_id", "event_id"]
            ).returning(DeliveryEventRecord.integration_id, DeliveryEventRecord.event_id)
        )
        kept |= {(row.integration_id, row.event_id) for row in inserted}
    return [pair for key, pair in unique.items() if key in kept]


def _fold(target: _Target, event: DeliveryEvent) -> None:
    """The reported status after ``event``: a higher rank wins, within a rank the later one."""
    status = ReportedStatus(event.kind.value)
    if target.status is not None and target.at is not None:
        new, old = REPORTED_RANK[status], REPORTED_RANK[target.status]
        if new < old or (new == old and event.occurred_at < target.at):
            return
    target.status, target.at, target.changed = status, event.occurred_at, True


def _suppression(item: Incoming, target: _Target) -> dict[str, Any] | None:
    event = item.event
    hard = event.kind is DeliveryEventKind.BOUNCED and event.bounce is BounceKind.HARD
    if not (event.suppress or hard or event.kind is DeliveryEventKind.COMPLAINED):
        return None
    channel = target.channel
    if channel not in (ChannelType.EMAIL, ChannelType.SMS):
        return None
    address = event.recipient or (target.email if channel is ChannelType.EMAIL else target.phone)
    if not address:
        return None
    detail = f"{event.kind.value}{f' ({event.bounce.value})' if event.bounce else ''}"
    reason = f"{detail}: {event.reason}" if event.reason else detail
    return {
        "id": new_row_id(), "organisation_id": target.organisation_id, "channel_type": channel,
        "address": normalize_address(channel, address), "reason": reason[:MAX_SUPPRESSION_REASON],
        "source_delivery_id": target.delivery_id, "meta": {}, "created_at": utcnow(),
    }  # fmt: skip

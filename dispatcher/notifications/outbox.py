"""The outbox in the database: which deliveries are due, reserving them, releasing them.

A delivery row is *due* when it is queued or retrying and its ``next_attempt_at`` has passed, or
when it was being sent and its send lease has passed (its worker died). Handing it to the broker
reserves it for ``enqueue_lease`` seconds by moving ``next_attempt_at`` forward; ``enqueue`` hands
the reserved ids to the broker and a worker claims them from there. Nothing is ever only in the
broker: a flushed Redis or a purged queue delays deliveries by at most a lease, and loses none.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, or_, select, true, update

from dispatcher.config import Settings, get_settings
from dispatcher.runtime.resources import database
from models import Delivery, DeliveryStatus
from models.types import utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueBatch:
    critical: bool
    ids: list[uuid.UUID]
    #: A blast was written unreserved: start the pump.
    pump: bool = False


@dataclass
class SweepReport:
    enqueued: int = 0
    batches: int = 0
    recovered_sends: int = 0
    by_organisation: dict[str, int] = field(default_factory=dict)
    #: The reserved batches, ``(critical, ids)``, in the order to enqueue them.
    ordered: list[tuple[bool, list[uuid.UUID]]] = field(default_factory=list)


def chunks(ids: Sequence[uuid.UUID], size: int) -> Iterator[list[uuid.UUID]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def release(ids: Sequence[uuid.UUID]) -> None:
    with database().transaction() as session:
        for chunk in chunks(ids, 1000):
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(chunk), Delivery.status == DeliveryStatus.QUEUED)
                .values(next_attempt_at=utcnow())
            )


def _due_condition(now: object) -> object:
    return or_(
        and_(
            Delivery.status.in_([DeliveryStatus.QUEUED, DeliveryStatus.RETRYING]),
            Delivery.next_attempt_at <= now,
        ),
        and_(Delivery.status == DeliveryStatus.SENDING, Delivery.next_attempt_at <= now),
    )


def reserve_due(
    settings: Settings | None = None,
    *,
    per_organisation: int | None = None,
    critical_only: bool = False,
) -> SweepReport:
    """Reserve due deliveries for ``enqueue_lease`` seconds, in the order they are to be enqueued:
    critical first, then one batch of each organisation in turn (``SweepReport.ordered``)."""
    settings = settings or get_settings()
    limit = per_organisation or settings.pump_round_size
    now = utcnow()
    report = SweepReport()
    with database().transaction() as session:
        organisations = session.execute(
            select(Delivery.organisation_id, Delivery.critical)
            .where(_due_condition(now))  # type: ignore[arg-type]
            .where(Delivery.critical.is_(True) if critical_only else true())
            .group_by(Delivery.organisation_id, Delivery.critical)
        ).all()
        picked: dict[tuple[uuid.UUID, bool], list[uuid.UUID]] = {}
        for organisation_id, critical in organisations:
            rows = session.execute(
                select(Delivery.id, Delivery.status)
                .where(
                    Delivery.organisation_id == organisation_id,
                    Delivery.critical.is_(critical),
                    _due_condition(now),  # type: ignore[arg-type]
                )
                .order_by(Delivery.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            ids = [row.id for row in rows]
            stale = [row.id for row in rows if row.status is DeliveryStatus.SENDING]
            report.recovered_sends += len(stale)
            picked[(organisation_id, critical)] = ids
            lease_until = now + timedelta(seconds=settings.enqueue_lease)
            for chunk in chunks(ids, 1000):
                session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(chunk))
                    .values(next_attempt_at=lease_until)
                )
            if stale:
                # A worker died while sending these: the next attempt may repeat that send.
                for chunk in chunks(stale, 1000):
                    session.execute(
                        update(Delivery)
                        .where(Delivery.id.in_(chunk))
                        .values(status=DeliveryStatus.RETRYING)
                    )
    per_queue: dict[bool, list[list[tuple[bool, list[uuid.UUID]]]]] = defaultdict(list)
    for (organisation_id, critical), ids in picked.items():
        batches = [(critical, chunk) for chunk in chunks(ids, settings.delivery_batch_size)]
        per_queue[critical].append(batches)
        report.by_organisation[str(organisation_id)] = report.by_organisation.get(
            str(organisation_id), 0
        ) + len(ids)
        report.enqueued += len(ids)
    # Critical first, then round-robin: one batch of each organisation in turn.
    ordered = [
        batch
        for critical in (True, False)
        for round_ in itertools.zip_longest(*per_queue.get(critical, []))
        for batch in round_
        if batch is not None
    ]
    report.batches = len(ordered)
    report.ordered = ordered
    return report


def due_count(settings: Settings | None = None) -> int:
    with database().session() as session:
        return len(
            session.scalars(
                select(Delivery.id).where(_due_condition(utcnow())).limit(1)  # type: ignore[arg-type]
            ).all()
        )

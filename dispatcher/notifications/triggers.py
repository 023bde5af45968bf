"""Triggers: validate an event, write its notifications and deliveries (the outbox), then enqueue.

The rows are written in one transaction before any broker message is sent; the database is the
source of truth and the outbox sweeper re-enqueues whatever the broker loses.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from dispatcher.config import Settings, get_settings
from dispatcher.errors import TriggerError, field_errors
from dispatcher.notifications.enqueue import publish_due
from dispatcher.notifications.events import InlineSubscriber, TopicTarget, TriggerEvent
from dispatcher.notifications.outbox import DueBatch
from dispatcher.runtime.resources import database
from dispatcher.sending.rendering import required_payload_keys
from dispatcher.validation import oversize_problem
from models import (
    ChannelType,
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationStatus,
    StepKind,
    Subscriber,
    Topic,
    TopicSubscription,
    Workflow,
    WorkflowStep,
)
from models.bulk import among, insert_many
from models.types import utcnow

#: External ids looked up per query, and missing ones listed in one error.
LOOKUP_CHUNK = 10_000
MAX_LISTED_ERRORS = 20

CHANNEL_STEPS = frozenset(
    {StepKind.EMAIL, StepKind.SMS, StepKind.CHAT, StepKind.PUSH, StepKind.WEBHOOK, StepKind.IN_APP}
)


@dataclass(frozen=True)
class TriggerReceipt:
    transaction_id: str
    notification_ids: list[str]
    deliveries: int
    #: True when this transaction id had been triggered before: nothing new was created.
    duplicate: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Planned:
    """Rows of one event, built in memory and inserted in bulk."""

    notifications: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    #: Delivery ids due now, reserved for an immediate broker message.
    due_now: list[uuid.UUID] = field(default_factory=list)


def trigger(
    organisation_id: uuid.UUID | str,
    workflow: str,
    to: Any,
    payload: dict[str, Any] | None = None,
    *,
    transaction_id: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    actor: dict[str, Any] | None = None,
) -> TriggerReceipt:
    """Notify ``to`` through ``workflow``; idempotent per (organisation, transaction_id)."""
    raw: dict[str, Any] = {
        "workflow": workflow,
        "to": to,
        "payload": {} if payload is None else payload,
    }
    if transaction_id is not None:
        raw["transaction_id"] = transaction_id
    if overrides is not None:
        raw["overrides"] = overrides
    if actor is not None:
        raw["actor"] = actor
    return trigger_bulk(organisation_id, [raw])[0]


async def trigger_async(
    organisation_id: uuid.UUID | str,
    workflow: str,
    to: Any,
    payload: dict[str, Any] | None = None,
    *,
    transaction_id: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    actor: dict[str, Any] | None = None,
) -> TriggerReceipt:
    """:func:`trigger` for async code: the database work runs in a thread."""
    call = functools.partial(
        trigger, transaction_id=transaction_id, overrides=overrides, actor=actor
    )
    return await asyncio.to_thread(call, organisation_id, workflow, to, payload)


def trigger_bulk(
    organisation_id: uuid.UUID | str, events: Sequence[dict[str, Any] | TriggerEvent]
) -> list[TriggerReceipt]:
    """Many events in one transaction and few broker messages; one receipt per event."""
    settings = get_settings()
    organisation = _organisation(organisation_id)
    if not isinstance(events, list | tuple):
        raise TriggerError([{"field": "events", "message": "must be a list of events"}])
    parsed = [_parse(event, position, len(events)) for position, event in enumerate(events)]
    try:
        receipts, due = _write(organisation, parsed, settings)
    except IntegrityError:
        # A concurrent trigger with the same transaction id won the race: answer as a repeat.
        receipts, due = _write(organisation, parsed, settings)
    publish_due(organisation, due, settings)
    return receipts


def _organisation(value: uuid.UUID | str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise TriggerError([{"field": "organisation_id", "message": "not a UUID"}]) from None


def _prefix(position: int, total: int) -> str:
    return "" if total == 1 else f"events.{position}."


def _parse(event: dict[str, Any] | BaseModel, position: int, total: int) -> TriggerEvent:
    if isinstance(event, TriggerEvent):
        return event
    try:
        return TriggerEvent.model_validate(event)
    except ValidationError as exc:
        prefix = _prefix(position, total)
        raise TriggerError(
            [{**item, "field": prefix + item["field"]} for item in field_errors(exc)]
        ) from None


def _check_sizes(event: TriggerEvent, settings: Settings, prefix: str) -> None:
    """The payload, and everything else stored with each notification, within the byte limit;
    no more targets than recipients allowed (before any database work)."""
    if len(event.to) > settings.max_recipients_per_trigger:
        raise TriggerError([_too_many_recipients(prefix, settings)])
    limit = settings.max_payload_bytes
    parts: list[tuple[str, Any]] = [
        ("payload", event.payload), ("overrides", event.overrides), ("actor", event.actor),
        *((f"to.{i}", t.model_dump(mode="json")) for i, t in enumerate(event.to)
          if isinstance(t, InlineSubscriber)),
    ]  # fmt: skip
    for name, value in parts:
        problem = oversize_problem(name, value, limit)
        if problem is not None:
            raise TriggerError([{"field": f"{prefix}{name}", "message": problem}])


def _too_many_recipients(prefix: str, settings: Settings) -> dict[str, Any]:
    return {
        "field": f"{prefix}to",
        "message": f"more than {settings.max_recipients_per_trigger} recipients in one trigger",
    }


def _write(
    organisation: uuid.UUID, events: list[TriggerEvent], settings: Settings
) -> tuple[list[TriggerReceipt], list[DueBatch]]:
    receipts: list[TriggerReceipt] = []
    due: list[DueBatch] = []
    with database().transaction() as session:
        for position, event in enumerate(events):
            receipt, batch = write_event(
                session, organisation, event, settings, prefix=_prefix(position, len(events))
            )
            receipts.append(receipt)
            if batch is not None:
                due.append(batch)
    return receipts, due


def write_event(
    session: Session,
    organisation: uuid.UUID,
    event: TriggerEvent,
    settings: Settings,
    *,
    prefix: str = "",
    reserve: bool = True,
    continuing: bool = False,
) -> tuple[TriggerReceipt, DueBatch | None]:
    """Write one event's rows in ``session``; the caller commits and publishes the batch.

    With ``reserve=False`` nothing is reserved for an immediate broker message: the outbox
    sweeper sends the due deliveries (for callers that cannot publish after their commit).
    With ``continuing=True`` the event adds recipients to a transaction written in parts (a
    broadcast): the repeat check is the caller's, which leaves out subscribers already notified.
    """
    _check_sizes(event, settings, prefix)
    if not continuing:
        existing = session.scalars(
            select(Notification.id).where(
                Notification.organisation_id == organisation,
                Notification.transaction_id == event.transaction_id,
            )
        ).all()
        if existing:
            receipt = TriggerReceipt(event.transaction_id, [str(i) for i in existing], 0, True)
            return receipt, None
    workflow = check_workflow(session, organisation, event, prefix)
    subscribers = _recipients(session, organisation, event.to, prefix, settings)
    planned = _plan(session, organisation, workflow, event, subscribers, settings)
    pump = False
    if not reserve or len(planned.due_now) > settings.direct_enqueue_limit:
        # A blast (or a caller that cannot publish): left to the outbox pump, which feeds the
        # broker in rounds shared fairly between organisations.
        due_ids = set(planned.due_now)
        for row in planned.deliveries:
            if row["id"] in due_ids:
                row["next_attempt_at"] = row["created_at"]
        planned.due_now = []
        pump = reserve
    insert_many(session, Notification, planned.notifications)
    insert_many(session, Delivery, planned.deliveries)
    receipt = TriggerReceipt(
        event.transaction_id,
        [str(row["id"]) for row in planned.notifications],
        len(planned.deliveries),
    )
    return receipt, DueBatch(workflow.critical, planned.due_now, pump=pump)


def check_workflow(
    session: Session, organisation: uuid.UUID, event: TriggerEvent, prefix: str = ""
) -> Workflow:
    """The event's workflow, active, with every payload key its templates use given."""
    workflow = _workflow(session, organisation, event.workflow, prefix)
    _check_required_payload(workflow, event, prefix)
    return workflow


def _workflow(session: Session, organisation: uuid.UUID, key: str, prefix: str) -> Workflow:
    workflow = session.scalars(
        select(Workflow)
        .where(Workflow.organisation_id == organisation, Workflow.key == key)
        .options(selectinload(Workflow.steps))
    ).one_or_none()
    if workflow is None or not workflow.active:
        state = "is inactive" if workflow is not None else "does not exist in this organisation"
        raise TriggerError([{"field": f"{prefix}workflow", "message": f"workflow {key!r} {state}"}])
    return workflow


def _check_required_payload(workflow: Workflow, event: TriggerEvent, prefix: str) -> None:
    sources = [source for step in workflow.steps for source in step.template.values()]
    missing = sorted(required_payload_keys(sources) - set(event.payload))
    if missing:
        raise TriggerError(
            [
                {
                    "field": f"{prefix}payload.{key}",
                    "message": "required by the workflow's templates",
                }
                for key in missing
            ]
        )


def _recipients(
    session: Session,
    organisation: uuid.UUID,
    targets: Sequence[Any],
    prefix: str,
    settings: Settings,
) -> list[uuid.UUID]:
    chosen: dict[uuid.UUID, None] = {}
    external_ids = [(i, t) for i, t in enumerate(targets) if isinstance(t, str)]
    if external_ids:
        wanted = list({target for _, target in external_ids})
        found: dict[str, uuid.UUID] = {}
        # In slices: on SQLite each id is one parameter, and a statement takes a bounded number.
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            rows = session.execute(
                select(Subscriber.external_id, Subscriber.id).where(
                    Subscriber.organisation_id == organisation,
                    among(session, Subscriber.external_id, wanted[start : start + LOOKUP_CHUNK]),
                )
            )
            found.update((external_id, row_id) for external_id, row_id in rows)
        missing = [
            {
                "field": f"{prefix}to.{i}",
                "message": f"no subscriber {target!r} in this organisation",
            }
            for i, target in external_ids
            if target not in found
        ]
        if missing:
            raise TriggerError(missing[:MAX_LISTED_ERRORS])
    for position, target in enumerate(targets):
        if isinstance(target, str):
            chosen[found[target]] = None
        elif isinstance(target, InlineSubscriber):
            chosen[_upsert_subscriber(session, organisation, target)] = None
        elif isinstance(target, TopicTarget):
            for subscriber_id in _topic_members(session, organisation, target, prefix, position):
                chosen[subscriber_id] = None
        if len(chosen) > settings.max_recipients_per_trigger:
            raise TriggerError([_too_many_recipients(prefix, settings)])
    return list(chosen)


def _upsert_subscriber(
    session: Session, organisation: uuid.UUID, target: InlineSubscriber
) -> uuid.UUID:
    fields = target.model_dump(exclude_unset=True, exclude={"subscriber_id"}, mode="json")
    existing = session.scalars(
        select(Subscriber).where(
            Subscriber.organisation_id == organisation,
            Subscriber.external_id == target.subscriber_id,
        )
    ).one_or_none()
    if existing is None:
        subscriber = Subscriber(
            organisation_id=organisation, external_id=target.subscriber_id, **fields
        )
        session.add(subscriber)
        session.flush()
        return subscriber.id
    for name, value in fields.items():
        setattr(existing, name, value)
    existing.updated_at = utcnow()
    return existing.id


def _topic_members(
    session: Session, organisation: uuid.UUID, target: TopicTarget, prefix: str, position: int
) -> Iterable[uuid.UUID]:
    topic_id = session.scalar(
        select(Topic.id).where(Topic.organisation_id == organisation, Topic.key == target.topic)
    )
    if topic_id is None:
        raise TriggerError(
            [{"field": f"{prefix}to.{position}.topic", "message": f"no topic {target.topic!r}"}]
        )
    return session.scalars(
        select(TopicSubscription.subscriber_id).where(
            TopicSubscription.organisation_id == organisation,
            TopicSubscription.topic_id == topic_id,
        )
    ).all()


def _plan(  # noqa: PLR0917 - private helper of one caller
    session: Session,
    organisation: uuid.UUID,
    workflow: Workflow,
    event: TriggerEvent,
    subscribers: list[uuid.UUID],
    settings: Settings,
) -> _Planned:
    now = utcnow()
    planned = _Planned()
    digest_step = next((step for step in workflow.steps if step.kind is StepKind.DIGEST), None)
    leaders = (
        _open_digests(session, organisation, workflow, subscribers, now) if digest_step else {}
    )
    for subscriber_id in subscribers:
        notification_id = uuid.uuid4()
        leader = leaders.get(subscriber_id)
        notification: dict[str, Any] = {
            "id": notification_id,
            "organisation_id": organisation,
            "transaction_id": event.transaction_id,
            "workflow_id": workflow.id,
            "subscriber_id": subscriber_id,
            "payload": event.payload,
            "actor": event.actor,
            "meta": {"overrides": event.overrides} if event.overrides else {},
            "created_at": now,
            "updated_at": now,
            "digest_leader_id": leader,
            "digest_until": None,
            "status": NotificationStatus.PENDING,
        }
        planned.notifications.append(notification)
        due = now
        collected = False
        first_row = len(planned.deliveries)  # this notification's deliveries start here
        for step in workflow.steps:
            if step.kind is StepKind.DELAY:
                due += timedelta(seconds=float(step.config["seconds"]))
                continue
            if step.kind is StepKind.DIGEST:
                if leader is not None:
                    collected = True
                else:
                    due += timedelta(seconds=float(step.config["window_seconds"]))
                    notification["digest_until"] = due
                continue
            planned.deliveries.append(
                _delivery(
                    organisation,
                    notification_id,
                    step,
                    workflow,
                    event,
                    due,
                    now,
                    collected,
                    settings,
                )
            )
            row = planned.deliveries[-1]
            if row["status"] is DeliveryStatus.QUEUED and due <= now:
                planned.due_now.append(row["id"])
        if collected and not any(
            row["status"] is DeliveryStatus.QUEUED for row in planned.deliveries[first_row:]
        ):
            # Every step after the digest was collected into the leader's: nothing of this
            # notification will be sent by a worker, so it is finished as written.
            notification["status"] = NotificationStatus.COMPLETED
    return planned


def _delivery(  # noqa: PLR0917 - private helper of one caller
    organisation: uuid.UUID,
    notification_id: uuid.UUID,
    step: WorkflowStep,
    workflow: Workflow,
    event: TriggerEvent,
    due: datetime,
    now: datetime,
    collected: bool,
    settings: Settings,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "organisation_id": organisation,
        "notification_id": notification_id,
        "step_id": step.id,
        "step_position": step.position,
        "step_kind": step.kind,
        "channel_type": ChannelType(step.kind.value),
        "critical": workflow.critical,
        "status": DeliveryStatus.QUEUED,
        "attempts": 0,
        "next_attempt_at": due,
        "content": {},
        "meta": {},
        "created_at": now,
        "updated_at": now,
    }
    if collected:
        row.update(status=DeliveryStatus.SKIPPED, next_attempt_at=None,
                   last_error="collected into an open digest")  # fmt: skip
    elif due <= now:
        # Reserved for the broker message sent right after the commit; if that message is
        # lost, the sweeper takes the delivery again once the reservation has passed.
        row["next_attempt_at"] = now + timedelta(seconds=settings.enqueue_lease)
    return row


def _open_digests(
    session: Session,
    organisation: uuid.UUID,
    workflow: Workflow,
    subscribers: list[uuid.UUID],
    now: datetime,
) -> dict[uuid.UUID, uuid.UUID]:
    """Subscriber -> the notification whose digest is still open for them, held until commit.

    Joining writes the leader row (an ``UPDATE`` that returns it) instead of reading it: on
    PostgreSQL the row lock serialises joining with a sender closing the digest
    (:mod:`dispatcher.sending.digests`) and, under READ COMMITTED, the conditions are checked
    again on the row as the sender left it, so a digest closed meanwhile is not joined; on
    SQLite, where a plain read runs outside the write transaction, the write is what makes the
    check and the join one step under the database's single writer lock.
    """
    leaders: dict[uuid.UUID, uuid.UUID] = {}
    for chunk_start in range(0, len(subscribers), 1000):
        chunk = subscribers[chunk_start : chunk_start + 1000]
        rows = session.execute(
            update(Notification)
            .where(
                Notification.organisation_id == organisation,
                Notification.workflow_id == workflow.id,
                Notification.subscriber_id.in_(chunk),
                Notification.digest_leader_id.is_(None),
                Notification.digest_until > now,
                Notification.digest_closed_at.is_(None),
            )
            .values(updated_at=now)
            .returning(Notification.subscriber_id, Notification.id)
            .execution_options(synchronize_session=False)
        ).all()
        leaders.update({row[0]: row[1] for row in rows})
    return leaders

"""Writing validated events as rows: one organisation's events at a time, in the caller's session.

What the events refer to (transaction ids already written, workflows, subscribers) is read once
for all of them, and their notification and delivery rows are inserted together, so a hundred
events cost about the statements of one. Each event still gets its own outcome: its receipt, or
the :class:`~dispatcher.errors.TriggerError` that refused it, with nothing of it written.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session, joinedload

from dispatcher.config import Settings
from dispatcher.errors import TriggerError
from dispatcher.notifications.digest_steps import Grouping, group, release_time
from dispatcher.notifications.events import InlineSubscriber, TopicTarget, TriggerEvent
from dispatcher.notifications.outbox import DueBatch
from dispatcher.notifications.throttling import (
    NOTHING_THROTTLED,
    THROTTLED,
    Throttled,
    count_throttles,
    throttle_keys,
)
from dispatcher.sending.fetch import AFTER_FETCH
from dispatcher.sending.rendering import required_payload_keys
from dispatcher.sending.routing import due_after_wait, wait_for
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
from models.ids import new_row_id
from models.types import utcnow

#: Ids looked up per query, and missing ones listed in one error.
LOOKUP_CHUNK = 10_000
MAX_LISTED_ERRORS = 20


@dataclass(frozen=True)
class TriggerReceipt:
    transaction_id: str
    notification_ids: list[str]
    deliveries: int
    #: True when this transaction id had been triggered before: nothing new was created.
    duplicate: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)


#: What became of one event: its receipt and the deliveries to publish, or why it was refused.
Outcome = tuple[TriggerReceipt, DueBatch | None] | TriggerError


@dataclass
class _Planned:
    """Rows built in memory and inserted in bulk."""

    notifications: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    #: Delivery ids due now, reserved for an immediate broker message.
    due_now: list[uuid.UUID] = field(default_factory=list)


@dataclass
class _Known:
    """What one organisation's events refer to, read once for all of them and kept up to date
    as they are written (a transaction id written by an earlier event of the same call is a
    repeat; a subscriber an earlier event created is found)."""

    existing: dict[str, list[str]]
    workflows: dict[str, Workflow]
    subscribers: dict[str, uuid.UUID]
    #: Workflow id -> what writing reads of it, worked out once per call.
    shapes: dict[uuid.UUID, _Shape] = field(default_factory=dict)

    def shape(self, workflow: Workflow) -> _Shape:
        shape = self.shapes.get(workflow.id)
        if shape is None:
            shape = self.shapes[workflow.id] = _shape(workflow)
        return shape


@dataclass(frozen=True)
class _Shape:
    """What writing an event reads of its workflow, read once per call instead of once per
    event (each read of an ORM attribute is a descriptor call: about 26 a notification)."""

    #: The payload keys its templates use.
    required: frozenset[str]
    digest: bool
    throttle: bool
    #: When every step is a channel step due at once (no delay, digest, throttle, fetch or
    #: wait: an OTP, a password reset), the delivery columns each step's row has in every
    #: notification; the event is then planned without reading the steps again.
    immediate: tuple[dict[str, Any], ...] | None


_CHANNELS = frozenset(channel.value for channel in ChannelType)


def _shape(workflow: Workflow) -> _Shape:
    kinds = {step.kind for step in workflow.steps}
    columns: tuple[dict[str, Any], ...] | None = None
    if all(
        step.kind.value in _CHANNELS and wait_for(step.config) is None for step in workflow.steps
    ):
        columns = tuple(
            {
                "step_id": step.id,
                "step_position": step.position,
                "step_kind": step.kind,
                "channel_type": ChannelType(step.kind.value),
                "critical": workflow.critical,
                "status": DeliveryStatus.QUEUED,
                "attempts": 0,
            }
            for step in workflow.steps
        )
    return _Shape(
        required=_required_payload(workflow),
        digest=StepKind.DIGEST in kinds,
        throttle=StepKind.THROTTLE in kinds,
        immediate=columns,
    )


def check_sizes(event: TriggerEvent, settings: Settings, prefix: str) -> None:
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
        if not value and limit >= len("null"):
            continue  # the defaults, ``{}`` and ``None``: not worth serialising
        problem = oversize_problem(name, value, limit)
        if problem is not None:
            raise TriggerError([{"field": f"{prefix}{name}", "message": problem}])


def write_events(
    session: Session,
    organisation: uuid.UUID,
    events: Sequence[TriggerEvent],
    settings: Settings,
    *,
    prefixes: Sequence[str] | None = None,
    reserve: bool = True,
    continuing: bool = False,
) -> list[Outcome]:
    """Write the rows of ``events`` (one organisation's) in ``session``, in order; one outcome
    per event. The caller commits and publishes the batches.

    With ``reserve=False`` nothing is reserved for an immediate broker message: the outbox
    sweeper sends the due deliveries (for callers that cannot publish after their commit).
    With ``continuing=True`` the events add recipients to transactions written in parts (a
    broadcast): the caller has left out the subscribers already notified, so a transaction id
    written before is not a repeat.
    """
    named = prefixes if prefixes is not None else [""] * len(events)
    sized: list[TriggerError | None] = []
    for event, prefix in zip(events, named, strict=True):
        try:
            check_sizes(event, settings, prefix)
            sized.append(None)
        except TriggerError as exc:
            sized.append(exc)
    known = _lookup(
        session, organisation, [e for e, error in zip(events, sized, strict=True) if not error]
    )
    if continuing:
        known.existing.clear()
    pending = _Planned()
    outcomes: list[Outcome] = []
    for event, prefix, error in zip(events, named, sized, strict=True):
        if error is not None:
            outcomes.append(error)
            continue
        try:
            outcomes.append(
                _write_one(session, organisation, event, settings, prefix, known, pending, reserve)
            )
        except TriggerError as exc:
            outcomes.append(exc)
    _insert(session, pending)
    return outcomes


def _write_one(  # noqa: PLR0917 - private helper of one caller
    session: Session,
    organisation: uuid.UUID,
    event: TriggerEvent,
    settings: Settings,
    prefix: str,
    known: _Known,
    pending: _Planned,
    reserve: bool,
) -> Outcome:
    existing = known.existing.get(event.transaction_id)
    if existing:
        return TriggerReceipt(event.transaction_id, existing, 0, True), None
    workflow = _workflow(known, event.workflow, prefix)
    shape = known.shape(workflow)
    _check_required_payload(shape.required, event, prefix)
    keys = (
        throttle_keys(workflow.steps, event.payload, event.actor, prefix) if shape.throttle else {}
    )
    subscribers = _recipients(session, organisation, event.to, prefix, settings, known)
    if shape.digest:
        # Joining an open digest reads the leaders in the database: an earlier event of this
        # call may have just opened one.
        _insert(session, pending)
    if shape.immediate is not None:
        planned = _plan_immediate(
            organisation, workflow, shape.immediate, event, subscribers, settings
        )
    else:
        planned = _plan(session, organisation, workflow, event, subscribers, settings, keys)
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
    pending.notifications += planned.notifications
    pending.deliveries += planned.deliveries
    receipt = TriggerReceipt(
        event.transaction_id,
        [str(row["id"]) for row in planned.notifications],
        len(planned.deliveries),
    )
    if receipt.notification_ids:
        known.existing[event.transaction_id] = receipt.notification_ids
    return receipt, DueBatch(workflow.critical, planned.due_now, pump=pump)


def _insert(session: Session, pending: _Planned) -> None:
    insert_many(session, Notification, pending.notifications)
    insert_many(session, Delivery, pending.deliveries)
    pending.notifications = []
    pending.deliveries = []


def _lookup(session: Session, organisation: uuid.UUID, events: Sequence[TriggerEvent]) -> _Known:
    known = _Known(defaultdict(list), {}, {})
    if not events:
        return known
    transaction_ids = list({event.transaction_id for event in events})
    for start in range(0, len(transaction_ids), LOOKUP_CHUNK):
        rows = session.execute(
            select(Notification.transaction_id, Notification.id).where(
                Notification.organisation_id == organisation,
                among(
                    session,
                    Notification.transaction_id,
                    transaction_ids[start : start + LOOKUP_CHUNK],
                ),
            )
        )
        for transaction_id, notification_id in rows:
            known.existing[transaction_id].append(str(notification_id))
    known.workflows = {
        workflow.key: workflow
        for workflow in session.scalars(
            select(Workflow)
            .where(
                Workflow.organisation_id == organisation,
                among(session, Workflow.key, {event.workflow for event in events}),
            )
            # Steps joined in, not loaded by a second query: one round trip less per group.
            .options(joinedload(Workflow.steps))
        ).unique()
    }
    # Inline subscribers too: whether one exists decides how many recipients an event has.
    external_ids = list(
        {
            target if isinstance(target, str) else target.subscriber_id
            for event in events
            for target in event.to
            if isinstance(target, str | InlineSubscriber)
        }
    )
    # In slices: on SQLite each id is one parameter, and a statement takes a bounded number.
    for start in range(0, len(external_ids), LOOKUP_CHUNK):
        found = session.execute(
            select(Subscriber.external_id, Subscriber.id).where(
                Subscriber.organisation_id == organisation,
                among(session, Subscriber.external_id, external_ids[start : start + LOOKUP_CHUNK]),
            )
        )
        known.subscribers.update((external_id, row_id) for external_id, row_id in found)
    return known


def check_workflow(
    session: Session, organisation: uuid.UUID, event: TriggerEvent, prefix: str = ""
) -> Workflow:
    """The event's workflow, active, with every payload key its templates use given."""
    workflows = {
        workflow.key: workflow
        for workflow in session.scalars(
            select(Workflow)
            .where(Workflow.organisation_id == organisation, Workflow.key == event.workflow)
            .options(joinedload(Workflow.steps))
        ).unique()
    }
    workflow = _workflow(_Known({}, workflows, {}), event.workflow, prefix)
    _check_required_payload(_required_payload(workflow), event, prefix)
    return workflow


def _workflow(known: _Known, key: str, prefix: str) -> Workflow:
    workflow = known.workflows.get(key)
    if workflow is None or not workflow.active:
        state = "is inactive" if workflow is not None else "does not exist in this organisation"
        raise TriggerError([{"field": f"{prefix}workflow", "message": f"workflow {key!r} {state}"}])
    return workflow


def _check_required_payload(required: frozenset[str], event: TriggerEvent, prefix: str) -> None:
    missing = sorted(required - event.payload.keys())
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


def _required_payload(workflow: Workflow) -> frozenset[str]:
    """The payload keys ``workflow``'s templates use that no fetch step before them merges."""
    required: set[str] = set()
    sources: list[str] = []
    merged: frozenset[str] = frozenset()
    for step in workflow.steps:
        if step.kind is StepKind.FETCH:
            # The keys a fetch merges are not the producer's to give.
            required |= _required_keys(tuple(sources)) - merged
            sources = []
            if not step.config.get("merge_key"):
                break  # an answer merged at the top level may provide any key
            merged |= {step.config["merge_key"]}
            continue
        sources.extend(step.template.values())
    else:
        required |= _required_keys(tuple(sources)) - merged
    return frozenset(required)


@functools.lru_cache(maxsize=1024)
def _required_keys(sources: tuple[str, ...]) -> frozenset[str]:
    # Keyed by the template text itself, so an edited workflow is parsed again: parsing took
    # a sixth of a single trigger's time.
    return frozenset(required_payload_keys(sources))


def _recipients(  # noqa: PLR0917 - private helper of one caller
    session: Session,
    organisation: uuid.UUID,
    targets: Sequence[Any],
    prefix: str,
    settings: Settings,
    known: _Known,
) -> list[uuid.UUID]:
    """The event's subscribers, in the order given, each once. Every check comes before the one
    write (inline subscribers' upserts), so a refused event leaves nothing behind in a
    transaction that other events commit."""
    missing = [
        {"field": f"{prefix}to.{i}", "message": f"no subscriber {target!r} in this organisation"}
        for i, target in enumerate(targets)
        if isinstance(target, str) and target not in known.subscribers
    ]
    if missing:
        raise TriggerError(missing[:MAX_LISTED_ERRORS])
    # A subscriber an inline target is about to create is known by its external id until then.
    chosen: dict[uuid.UUID | str, None] = {}
    for position, target in enumerate(targets):
        if isinstance(target, str):
            chosen[known.subscribers[target]] = None
        elif isinstance(target, InlineSubscriber):
            chosen[known.subscribers.get(target.subscriber_id, target.subscriber_id)] = None
        elif isinstance(target, TopicTarget):
            for subscriber_id in _topic_members(session, organisation, target, prefix, position):
                chosen[subscriber_id] = None
        if len(chosen) > settings.max_recipients_per_trigger:
            raise TriggerError([_too_many_recipients(prefix, settings)])
    for target in targets:
        if isinstance(target, InlineSubscriber):
            known.subscribers[target.subscriber_id] = _upsert_subscriber(
                session, organisation, target
            )
    return [key if isinstance(key, uuid.UUID) else known.subscribers[key] for key in chosen]


def _too_many_recipients(prefix: str, settings: Settings) -> dict[str, Any]:
    return {
        "field": f"{prefix}to",
        "message": f"more than {settings.max_recipients_per_trigger} recipients in one trigger",
    }


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
    keys: dict[uuid.UUID, str],
) -> _Planned:
    now = utcnow()
    planned = _Planned()
    throttled = (
        count_throttles(session, organisation, workflow.steps, keys, subscribers, now=now)
        if keys
        else NOTHING_THROTTLED
    )
    digest_step = next((step for step in workflow.steps if step.kind is StepKind.DIGEST), None)
    grouping = Grouping()
    leaders: dict[uuid.UUID, uuid.UUID] = {}
    if digest_step is not None:
        grouping = group(
            session, organisation, digest_step, event.payload, event.actor, subscribers
        )
        leaders = _open_digests(session, organisation, workflow, subscribers, grouping.keys, now)
    folded_keys = _overflow_keys(workflow, throttled, keys)
    # A throttle's overflow folds into a digest (never beside a digest step): the same
    # open-digest lookup, keyed apart from any other digest of the workflow.
    leaders = leaders or _open_digests(
        session, organisation, workflow, list(folded_keys), folded_keys, now
    )
    for subscriber_id in subscribers:
        leader = leaders.get(subscriber_id)
        notification = _notification(organisation, workflow, event, subscriber_id, now)
        notification_id = notification["id"]
        if subscriber_id in grouping.problems:
            notification["meta"]["digest_key_error"] = grouping.problems[subscriber_id]
        notification["digest_leader_id"] = leader
        notification["digest_key"] = grouping.keys.get(subscriber_id) or folded_keys.get(
            subscriber_id
        )
        planned.notifications.append(notification)
        due = now
        collected = False
        stopped = False
        first_row = len(planned.deliveries)  # this notification's deliveries start here
        #: The last fetch step before the current one, and the delay steps' seconds since.
        fetch: dict[str, Any] | None = None
        dues: dict[int, datetime] = {}
        for step in workflow.steps:
            if step.kind is StepKind.DELAY:
                due += timedelta(seconds=float(step.config["seconds"]))
                if fetch is not None:
                    fetch["delay"] += float(step.config["seconds"])
                continue
            if step.kind is StepKind.DIGEST:
                if leader is not None:
                    collected = True
                else:
                    due = release_time(step.config, grouping.timezones.get(subscriber_id), due)
                    notification["digest_until"] = due
                continue
            if step.kind is StepKind.THROTTLE:
                due, held = _at_throttle(step, subscriber_id, throttled, leader, due, notification)
                stopped = stopped or held == "stopped"
                collected = collected or held == "collected"
                continue
            due = dues[step.position] = due_after_wait(step.config, due, dues)
            planned.deliveries.append(
                _delivery(
                    organisation,
                    notification_id,
                    step,
                    workflow,
                    due,
                    now,
                    collected,
                    settings,
                )
            )
            _hold(planned.deliveries[-1], stopped, fetch, due <= now, planned)
            if step.kind is StepKind.FETCH:
                fetch = {"position": step.position, "delay": 0.0}
        if (collected or stopped) and not any(
            row["status"] is DeliveryStatus.QUEUED for row in planned.deliveries[first_row:]
        ):
            # Every step after the digest was collected into the leader's (or throttled):
            # nothing of this notification will be sent by a worker, so it is finished as written.
            notification["status"] = NotificationStatus.COMPLETED
    return planned


def _notification(
    organisation: uuid.UUID,
    workflow: Workflow,
    event: TriggerEvent,
    subscriber_id: uuid.UUID,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": new_row_id(),
        "organisation_id": organisation,
        "transaction_id": event.transaction_id,
        "workflow_id": workflow.id,
        "workflow_version": workflow.version,
        "subscriber_id": subscriber_id,
        "payload": event.payload,
        "actor": event.actor,
        "meta": {"overrides": event.overrides} if event.overrides else {},
        "created_at": now,
        "updated_at": now,
        "digest_leader_id": None,
        "digest_until": None,
        "digest_key": None,
        "status": NotificationStatus.PENDING,
    }


def _plan_immediate(  # noqa: PLR0917 - private helper of one caller
    organisation: uuid.UUID,
    workflow: Workflow,
    steps: tuple[dict[str, Any], ...],
    event: TriggerEvent,
    subscribers: list[uuid.UUID],
    settings: Settings,
) -> _Planned:
    """:func:`_plan` for a workflow of channel steps due at once: the same rows, each delivery
    reserved for the broker message sent after the commit."""
    now = utcnow()
    reserved = now + timedelta(seconds=settings.enqueue_lease)
    planned = _Planned()
    for subscriber_id in subscribers:
        notification = _notification(organisation, workflow, event, subscriber_id, now)
        planned.notifications.append(notification)
        for columns in steps:
            row = {
                **columns,
                "id": new_row_id(),
                "organisation_id": organisation,
                "notification_id": notification["id"],
                "next_attempt_at": reserved,
                "content": {},
                "meta": {},
                "created_at": now,
                "updated_at": now,
            }
            planned.deliveries.append(row)
            planned.due_now.append(row["id"])
    return planned


def _at_throttle(  # noqa: PLR0917 - private helper of one caller
    step: WorkflowStep,
    subscriber_id: uuid.UUID,
    throttled: Throttled,
    leader: uuid.UUID | None,
    due: datetime,
    notification: dict[str, Any],
) -> tuple[datetime, Literal["passed", "stopped", "collected"]]:
    """A throttle step's verdict on one notification, and its later steps' due time."""
    window_end = throttled.folded(step, subscriber_id)
    if window_end is None:
        return due, "stopped" if throttled.stops(step, subscriber_id) else "passed"
    if leader is not None:
        return due, "collected"
    # The window's first notification over the limit leads its overflow digest, sent when
    # the window ends.
    notification["digest_until"] = due = max(due, window_end)
    return due, "passed"


#: The digest key of a throttle's overflow (beside no digest step: the two cannot mix).
OVERFLOW_KEY_PREFIX = "throttle:"


def _overflow_keys(
    workflow: Workflow, throttled: Throttled, keys: dict[uuid.UUID, str]
) -> dict[uuid.UUID, str]:
    """Subscriber -> digest key, of those over the limit of a throttle folding into a digest."""
    for step in workflow.steps:
        ends = throttled.window_ends.get(step.id)
        if ends:
            key = f"{OVERFLOW_KEY_PREFIX}{keys.get(step.id, '')}"
            return dict.fromkeys(ends, key)
    return {}


def _hold(
    row: dict[str, Any],
    stopped: bool,
    fetch: dict[str, Any] | None,
    due_now: bool,
    planned: _Planned,
) -> None:
    """A queued delivery row skipped by a throttle, held for the fetch step before it, or
    reserved for the broker message sent after the commit when it is due now."""
    if stopped and row["status"] is DeliveryStatus.QUEUED:
        row.update(status=DeliveryStatus.SKIPPED, next_attempt_at=None, last_error=THROTTLED)
    if fetch is not None and row["status"] is DeliveryStatus.QUEUED:
        # Made due when the fetch's outcome is written (dispatcher.sending.store).
        row.update(next_attempt_at=None, meta={AFTER_FETCH: dict(fetch)})
    elif row["status"] is DeliveryStatus.QUEUED and due_now:
        planned.due_now.append(row["id"])


def _delivery(  # noqa: PLR0917 - private helper of one caller
    organisation: uuid.UUID,
    notification_id: uuid.UUID,
    step: WorkflowStep,
    workflow: Workflow,
    due: datetime,
    now: datetime,
    collected: bool,
    settings: Settings,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": new_row_id(),
        "organisation_id": organisation,
        "notification_id": notification_id,
        "step_id": step.id,
        "step_position": step.position,
        "step_kind": step.kind,
        "channel_type": None if step.kind is StepKind.FETCH else ChannelType(step.kind.value),
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


def _open_digests(  # noqa: PLR0917 - private helper of one caller
    session: Session,
    organisation: uuid.UUID,
    workflow: Workflow,
    subscribers: list[uuid.UUID],
    keys: dict[uuid.UUID, str],
    now: datetime,
) -> dict[uuid.UUID, uuid.UUID]:
    """Subscriber -> the notification whose digest is still open for them and their digest key
    (``keys``; a subscriber not in it has none), held until commit.

    Joining writes the leader row (an ``UPDATE`` that returns it) instead of reading it: on
    PostgreSQL the row lock serialises joining with a sender closing the digest
    (:mod:`dispatcher.sending.digests`) and, under READ COMMITTED, the conditions are checked
    again on the row as the sender left it, so a digest closed meanwhile is not joined; on
    SQLite, where a plain read runs outside the write transaction, the write is what makes the
    check and the join one step under the database's single writer lock.
    """
    leaders: dict[uuid.UUID, uuid.UUID] = {}
    unkeyed = [subscriber for subscriber in subscribers if subscriber not in keys]
    keyed = [subscriber for subscriber in subscribers if subscriber in keys]
    for chunk_start in range(0, len(unkeyed), 1000):
        chunk = unkeyed[chunk_start : chunk_start + 1000]
        matching = (Notification.subscriber_id.in_(chunk), Notification.digest_key.is_(None))
        leaders.update(_join_open(session, organisation, workflow, now, matching))
    for chunk_start in range(0, len(keyed), 500):
        chunk = keyed[chunk_start : chunk_start + 500]
        matching = (
            # The subscriber alone as well, so PostgreSQL finds the rows by the digest index.
            Notification.subscriber_id.in_(chunk),
            tuple_(Notification.subscriber_id, Notification.digest_key).in_(
                [(subscriber, keys[subscriber]) for subscriber in chunk]
            ),
        )
        leaders.update(_join_open(session, organisation, workflow, now, matching))
    return leaders


def _join_open(
    session: Session,
    organisation: uuid.UUID,
    workflow: Workflow,
    now: datetime,
    matching: tuple[Any, ...],
) -> dict[uuid.UUID, uuid.UUID]:
    rows = session.execute(
        update(Notification)
        .where(
            Notification.organisation_id == organisation,
            Notification.workflow_id == workflow.id,
            *matching,
            Notification.digest_leader_id.is_(None),
            Notification.digest_until > now,
            Notification.digest_closed_at.is_(None),
        )
        .values(updated_at=now)
        .returning(Notification.subscriber_id, Notification.id)
        .execution_options(synchronize_session=False)
    ).all()
    return {row[0]: row[1] for row in rows}

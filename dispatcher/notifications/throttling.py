"""Throttle steps: at most ``limit`` notifications of a workflow per subscriber (and ``key``) per
``window`` seconds; a notification over the limit has the steps after the throttle skipped,
with the reason ``throttled``.

Evaluated when the trigger is written, not when a worker sends. There the count is one upsert
per trigger in the same transaction as the notification and delivery rows it decides: a
trigger that is refused or rolled back counts nothing, the outcome is fixed (and visible in the
receipt's deliveries) the moment the trigger returns, and no worker has to read, lock or retry
anything for it. Sending later (after a delay step) does not move the window: the trigger's
time is what counts.

The counter is a ``throttle_windows`` row per (step, subscriber, key), upserted with
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING count``: on PostgreSQL concurrent triggers queue
on that row's lock and each sees the count the one before it committed, so exactly ``limit``
pass across every API process and worker; on SQLite the database's single writer does the
same. The database, not Redis, so that the embedded default (no Redis) and the production stack
count alike, and so that the count commits or rolls back with the rows it decided. The window
is fixed: it opens with the first notification counted and, once ``window`` seconds have
passed, the next notification opens a new one. Counters of ended windows are deleted by the
retention job (:func:`prune_expired_windows`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import case, delete, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dispatcher.errors import TriggerError
from dispatcher.sending.rendering import RenderError, TemplateRenderer, required_payload_keys
from models import StepKind, ThrottleWindow, WorkflowStep
from models.ids import new_row_id

#: The longest window a throttle may count over (90 days), and the longest rendered key.
MAX_WINDOW_SECONDS = 90 * 24 * 3600
MAX_KEY_LENGTH = 200
#: Subscribers counted per statement (a blast to 20,000 is 20 upserts, not 20,000).
UPSERT_CHUNK = 1000
#: ``Delivery.last_error`` of the deliveries a throttle skipped.
THROTTLED = "throttled"

_renderers = threading.local()


class ThrottleConfig(BaseModel):
    """A throttle step's ``config``: ``{"limit": 3, "window": 3600, "key": "{{ payload.id }}"}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(ge=1, le=1_000_000)
    window: float = Field(gt=0, le=MAX_WINDOW_SECONDS)
    #: A template over ``payload`` and ``actor``; notifications with different keys are
    #: counted apart. Without one, all of the workflow's notifications count together.
    key: str | None = Field(default=None, max_length=1000)
    #: What happens to a notification over the limit: ``skip`` (its later steps are skipped,
    #: reason ``throttled``) or ``digest`` (the window's overflow is folded into one digest,
    #: sent through the later steps when the window ends, with ``digest.events``).
    overflow: Literal["skip", "digest"] = "skip"


@dataclass(frozen=True)
class Throttled:
    """Which subscribers each throttle step of one trigger let through."""

    admitted: Mapping[uuid.UUID, frozenset[uuid.UUID]]
    #: Of a step whose overflow goes to a digest: subscriber stopped -> when the window ends.
    window_ends: Mapping[uuid.UUID, Mapping[uuid.UUID, datetime]] = field(default_factory=dict)

    def stops(self, step: WorkflowStep, subscriber_id: uuid.UUID) -> bool:
        return subscriber_id not in self.admitted.get(step.id, frozenset())

    def folded(self, step: WorkflowStep, subscriber_id: uuid.UUID) -> datetime | None:
        """When the window ends, if the subscriber's notification is over the limit of a step
        that folds its overflow into a digest."""
        return self.window_ends.get(step.id, {}).get(subscriber_id)


NOTHING_THROTTLED = Throttled({})


def _renderer() -> TemplateRenderer:
    renderer: TemplateRenderer | None = getattr(_renderers, "renderer", None)
    if renderer is None:
        renderer = _renderers.renderer = TemplateRenderer()
    return renderer


def throttle_keys(
    steps: Iterable[WorkflowStep], payload: Mapping[str, Any], actor: Any, prefix: str = ""
) -> dict[uuid.UUID, str]:
    """Each throttle step's key rendered for one trigger, before anything is written; a key
    that uses a payload field the trigger lacks, or does not render, refuses the trigger."""
    keys: dict[uuid.UUID, str] = {}
    for step in steps:
        if step.kind is not StepKind.THROTTLE:
            continue
        source = ThrottleConfig.model_validate(step.config).key
        if not source:
            keys[step.id] = ""
            continue
        missing = sorted(required_payload_keys([source]) - set(payload))
        if missing:
            raise TriggerError(
                [
                    {"field": f"{prefix}payload.{name}",
                     "message": f"required by the throttle key of step {step.position}"}
                    for name in missing
                ]
            )  # fmt: skip
        try:
            key = _renderer().render(source, {"payload": payload, "actor": actor or {}})
        except RenderError as exc:
            raise TriggerError(
                [{"field": f"{prefix}payload",
                  "message": f"step {step.position}: the throttle key does not render: {exc}"}]
            ) from None  # fmt: skip
        if len(key) > MAX_KEY_LENGTH:
            raise TriggerError(
                [{"field": f"{prefix}payload",
                  "message": f"step {step.position}: the throttle key renders longer than "
                             f"{MAX_KEY_LENGTH} characters"}]
            )  # fmt: skip
        keys[step.id] = key
    return keys


def count_throttles(
    session: Session,
    organisation: uuid.UUID,
    steps: Sequence[WorkflowStep],
    keys: Mapping[uuid.UUID, str],
    subscribers: Sequence[uuid.UUID],
    *,
    now: datetime,
) -> Throttled:
    """Count one notification per subscriber at each throttle step, in step order: one that a
    throttle stopped reaches (and counts at) no later throttle."""
    admitted: dict[uuid.UUID, frozenset[uuid.UUID]] = {}
    window_ends: dict[uuid.UUID, dict[uuid.UUID, datetime]] = {}
    reaching = list(subscribers)
    for step in steps:
        if step.kind is not StepKind.THROTTLE:
            continue
        config = ThrottleConfig.model_validate(step.config)
        key = keys.get(step.id, "")
        passed, ends = _count(session, organisation, step.id, key, reaching, config, now=now)
        admitted[step.id] = frozenset(passed)
        if config.overflow == "digest":
            window_ends[step.id] = {s: end for s, end in ends.items() if s not in passed}
        reaching = [subscriber for subscriber in reaching if subscriber in passed]
    return Throttled(admitted, window_ends)


def _count(  # noqa: PLR0917 - private helper of one caller
    session: Session,
    organisation: uuid.UUID,
    step_id: uuid.UUID,
    key: str,
    subscribers: Sequence[uuid.UUID],
    config: ThrottleConfig,
    *,
    now: datetime,
) -> tuple[set[uuid.UUID], dict[uuid.UUID, datetime]]:
    """The subscribers let through, and when each one's window ends."""
    if not subscribers:
        return set(), {}
    table = ThrottleWindow
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    expired = table.window_start <= now - timedelta(seconds=config.window)
    passed: set[uuid.UUID] = set()
    ends: dict[uuid.UUID, datetime] = {}
    window = timedelta(seconds=config.window)
    # In one order everywhere, so two triggers locking the same rows cannot deadlock.
    ordered = sorted(set(subscribers))
    for start in range(0, len(ordered), UPSERT_CHUNK):
        rows = [
            {"id": new_row_id(), "organisation_id": organisation, "step_id": step_id,
             "subscriber_id": subscriber, "key": key, "window_start": now, "count": 1,
             "meta": {}, "created_at": now}
            for subscriber in ordered[start : start + UPSERT_CHUNK]
        ]  # fmt: skip
        upsert = insert(table).values(rows)
        statement = upsert.on_conflict_do_update(
            index_elements=[table.step_id, table.subscriber_id, table.key],
            set_={
                "count": case((expired, 1), else_=table.count + 1),
                "window_start": case(
                    (expired, literal(now, table.window_start.type)),
                    else_=table.window_start,
                ),
            },
        ).returning(table.subscriber_id, table.count, table.window_start)
        for subscriber, count, window_start in session.execute(statement):
            if count <= config.limit:
                passed.add(subscriber)
            ends[subscriber] = window_start + window
    return passed, ends


def prune_expired_windows(session: Session, now: datetime, size: int) -> int:
    """Delete up to ``size`` counters whose window has ended; answers how many went.

    An ended window counts for nothing (the next notification opens a new one at one), so its
    row is only space: without this, ``throttle_windows`` grows by one row per subscriber and
    key ever throttled. A trigger racing the delete either updates the row first (then it is
    no longer expired and stays) or inserts a new one after it."""
    steps = session.execute(
        select(WorkflowStep.id, WorkflowStep.config).where(WorkflowStep.kind == StepKind.THROTTLE)
    ).all()
    removed = 0
    for step_id, config in steps:
        if removed >= size:
            break
        try:
            window = ThrottleConfig.model_validate(config).window
        except ValidationError:
            window = MAX_WINDOW_SECONDS
        expired = (
            select(ThrottleWindow.id)
            .where(
                ThrottleWindow.step_id == step_id,
                ThrottleWindow.window_start < now - timedelta(seconds=window),
            )
            .limit(size - removed)
        )
        ids = session.scalars(expired).all()
        if ids:
            session.execute(delete(ThrottleWindow).where(ThrottleWindow.id.in_(ids)))
            removed += len(ids)
    return removed

"""Status-driven routing on the sending side: a step's ``success`` rule and ``wait_for`` condition.

Two options of a channel step's ``config`` (validated when the workflow is stored,
:mod:`dispatcher.actions.workflows`):

``"success": {"delivered_within": SECONDS}``
    The step counts as done once the provider reports the message ``delivered`` (or opened,
    clicked) within ``SECONDS`` of the send, not when the provider accepted it (``"sent"``,
    the default). Each send writes a :class:`models.DeliveryWatch` (:func:`watch_rows`, in the
    write-back's transaction); the provider's reports and the clock move it
    (:mod:`dispatcher.lifecycle.routing`), and a failure sends the message again through the
    organisation's next integration for the channel.

``"wait_for": {"step": POSITION, "status": STATUS, "within": SECONDS}``
    "email; if not opened within an hour, SMS": the step waits until ``SECONDS`` after the
    earlier step's send, and is skipped if that step's delivery reached ``STATUS`` by then
    (``delivered``, ``opened``, ``clicked`` from the provider's callbacks; ``seen``, ``read``
    for an in-app step from the inbox's marks; a later status implies the earlier ones: a
    click proves an open). The step is due, at trigger time, at the earlier step's due time
    plus ``SECONDS`` (:func:`due_after_wait`; later steps follow it, as after a delay); when the
    worker takes it, :func:`decide_wait` reads the earlier delivery of the same notification:
    not sent yet, or sent less than ``SECONDS`` ago, it is put back with the rest of the time as
    its due time (a row in the database, no worker held); sent and the status reached, it is
    skipped with a reason that names the condition; otherwise (not reached in time, or the
    earlier step failed or was skipped and so never can) it is sent.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    TERMINAL_DELIVERY_STATUSES,
    ChannelType,
    Delivery,
    DeliveryEventRecord,
    DeliveryStatus,
    InboxMessage,
    ReportedStatus,
    WatchState,
    WorkflowStep,
)
from models.bulk import among
from models.ids import new_row_id

if TYPE_CHECKING:
    from dispatcher.sending.execute import Outcome
    from dispatcher.sending.plan import Job

#: The longest wait or confirmation window, in seconds (as delay steps': 90 days).
MAX_ROUTING_SECONDS = 90 * 24 * 3600

WaitStatus = Literal["delivered", "opened", "clicked", "seen", "read"]
#: The statuses only an in-app step reaches (its inbox marks), and only it.
INBOX_STATUSES = frozenset({"seen", "read"})

#: The statuses a reported event proves: a click proves an open, an open the delivery.
PROVEN_BY: Mapping[ReportedStatus, frozenset[str]] = {
    ReportedStatus.DELIVERED: frozenset({"delivered"}),
    ReportedStatus.OPENED: frozenset({"delivered", "opened"}),
    ReportedStatus.CLICKED: frozenset({"delivered", "opened", "clicked"}),
    ReportedStatus.COMPLAINED: frozenset({"delivered"}),
}


class DeliveredWithin(BaseModel):
    """``config.success`` of a step that counts as done when reported delivered in time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivered_within: float = Field(gt=0, le=MAX_ROUTING_SECONDS)


class WaitFor(BaseModel):
    """``config.wait_for``: wait on an earlier step's status."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The earlier step's position in the workflow (0 is the first step).
    step: int = Field(ge=0)
    status: WaitStatus
    within: float = Field(gt=0, le=MAX_ROUTING_SECONDS)


def confirm_within(config: Mapping[str, Any]) -> float | None:
    """Seconds a send of this step waits for a ``delivered`` report, or ``None`` (``"sent"``).

    Stored configs were validated; one that no longer reads (written by hand) counts as
    ``"sent"``, today's rule, rather than failing its deliveries."""
    success = config.get("success")
    if not isinstance(success, dict):
        return None
    try:
        return DeliveredWithin.model_validate(success).delivered_within
    except ValidationError:
        return None


def wait_for(config: Mapping[str, Any]) -> WaitFor | None:
    value = config.get("wait_for")
    if not isinstance(value, dict):
        return None
    try:
        return WaitFor.model_validate(value)
    except ValidationError:
        return None


def due_after_wait(
    config: Mapping[str, Any], due: datetime, dues: Mapping[int, datetime]
) -> datetime:
    """A step's due time at trigger time: ``due``, or for a ``wait_for`` step the earlier
    step's due time plus the wait, if that is later. ``dues`` maps the positions of the
    notification's channel steps planned so far to their due times."""
    wait = wait_for(config)
    if wait is None or wait.step not in dues:
        return due
    return max(due, dues[wait.step] + timedelta(seconds=wait.within))


# --- the worker's side of wait_for -------------------------------------------------------------


@dataclass(frozen=True)
class Earlier:
    """The earlier step's delivery, as the waiting step's planning reads it."""

    status: DeliveryStatus
    sent_at: datetime | None
    #: Statuses it reached: from its provider's events, or its inbox message's marks.
    reached: frozenset[str] = frozenset()


@dataclass(frozen=True)
class WaitVerdict:
    """``send`` it; ``skip`` it (``reason``); or look again in ``delay`` seconds."""

    action: Literal["send", "skip", "later"]
    reason: str = ""
    delay: float = 0.0


def describe(wait: WaitFor) -> str:
    return f"step {wait.step} {wait.status} within {wait.within:g} s"


def decide_wait(wait: WaitFor, earlier: Earlier | None, now: datetime) -> WaitVerdict:
    """Whether a ``wait_for`` step is sent now, skipped, or looked at again later."""
    if earlier is None:
        # The earlier step made no delivery (a later version without it): it reached nothing.
        return WaitVerdict("send")
    if wait.status in earlier.reached:
        return WaitVerdict("skip", f"wait_for: {describe(wait)}: it was {wait.status}")
    if earlier.status not in TERMINAL_DELIVERY_STATUSES:
        # Not sent yet: its window starts when it is, at the earliest now.
        return WaitVerdict("later", f"wait_for: {describe(wait)}: step {wait.step} not sent yet",
                           wait.within)  # fmt: skip
    if earlier.status is not DeliveryStatus.SENT or earlier.sent_at is None:
        return WaitVerdict("send")  # failed, skipped: it never will be
    left = (earlier.sent_at + timedelta(seconds=wait.within) - now).total_seconds()
    if left > 0:
        return WaitVerdict("later", f"wait_for: {describe(wait)}: waiting", left)
    return WaitVerdict("send")


def load_earlier(
    session: Session,
    deliveries: Iterable[Any],
    steps: Mapping[uuid.UUID, WorkflowStep],
) -> dict[uuid.UUID, Earlier | None]:
    """For each delivery of a ``wait_for`` step: the earlier step's delivery of the same
    notification (``None`` if it has none). Three small queries, and none when no delivery of
    the batch waits."""
    wanted: dict[uuid.UUID, tuple[uuid.UUID, int]] = {}
    for delivery in deliveries:
        step = steps.get(delivery.step_id) if delivery.step_id else None
        wait = wait_for(step.config) if step is not None else None
        if wait is not None:
            wanted[delivery.id] = (delivery.notification_id, wait.step)
    if not wanted:
        return {}
    rows = session.execute(
        select(Delivery.id, Delivery.notification_id, Delivery.step_position, Delivery.status,
               Delivery.sent_at, Delivery.channel_type)
        .where(among(session, Delivery.notification_id, {n for n, _ in wanted.values()}))
    ).all()  # fmt: skip
    by_position = {(row.notification_id, row.step_position): row for row in rows}
    earlier_ids = [row.id for key, row in by_position.items() if key in set(wanted.values())]
    reached = _reached(
        session, earlier_ids, {row.id for row in rows if row.channel_type is ChannelType.IN_APP}
    )
    found: dict[uuid.UUID, Earlier | None] = {}
    for delivery_id, key in wanted.items():
        row = by_position.get(key)
        found[delivery_id] = (
            None if row is None
            else Earlier(row.status, row.sent_at, frozenset(reached.get(row.id, ())))
        )  # fmt: skip
    return found


def _reached(
    session: Session, ids: Collection[uuid.UUID], in_app: Collection[uuid.UUID]
) -> dict[uuid.UUID, set[str]]:
    reached: dict[uuid.UUID, set[str]] = defaultdict(set)
    if not ids:
        return reached
    for delivery_id, kind in session.execute(
        select(DeliveryEventRecord.delivery_id, DeliveryEventRecord.kind)
        .where(among(session, DeliveryEventRecord.delivery_id, ids))
        .distinct()
    ):
        reached[delivery_id] |= PROVEN_BY.get(kind, frozenset())
    inbox = [item for item in ids if item in in_app]
    if inbox:
        for message_of, seen_at, read_at in session.execute(
            select(InboxMessage.delivery_id, InboxMessage.seen_at, InboxMessage.read_at).where(
                among(session, InboxMessage.delivery_id, inbox)
            )
        ):
            if message_of is not None and (seen_at is not None or read_at is not None):
                reached[message_of] |= {"seen", "read"} if read_at is not None else {"seen"}
    return reached


# --- the write-back's side of success: delivered -------------------------------------------------


def watch_rows(finished: Iterable[tuple[Job, Outcome]], now: datetime) -> list[dict[str, Any]]:
    """A waiting :class:`models.DeliveryWatch` for each send of a step whose success is
    ``delivered``; written with the outcome, so a callback that finds the delivery finds it."""
    rows: list[dict[str, Any]] = []
    for job, outcome in finished:
        if (
            job.confirm_within is None
            or outcome.status is not DeliveryStatus.SENT
            or job.channel is ChannelType.IN_APP
        ):
            continue
        rows.append({
            "id": new_row_id(), "organisation_id": job.organisation_id,
            "delivery_id": job.delivery_id, "integration_id": outcome.integration_id,
            "provider": outcome.provider or "", "state": WatchState.WAITING,
            "provider_message_id": (outcome.provider_message_id or "")[:500] or None,
            "sent_at": now, "wait_until": now + timedelta(seconds=job.confirm_within),
            "meta": {}, "created_at": now,
        })  # fmt: skip
    return rows

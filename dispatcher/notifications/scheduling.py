"""Scheduled triggers: cron expressions read in a time zone, and the beat job that fires them.

A schedule's cron fields are wall-clock time in its IANA time zone, read as
:mod:`dispatcher.notifications.cron` describes (clock changes included).

A schedule that must keep a fixed interval of real time through a clock change (``*/30 * * * *``)
should use ``UTC``.

Firing goes through :func:`dispatcher.notifications.triggers.trigger_bulk` with the transaction id
``schedule:<schedule id>:<due time ISO>``: triggers are idempotent per transaction id, so two
beat processes, a redelivered task, or a crash between the trigger and the advance of
``next_fire_at`` never send a due time twice. A schedule that fell behind (beat stopped for a
while) fires once for the times it missed, then moves on to the first time after now.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select, update

from dispatcher.config import Settings, get_settings
from dispatcher.errors import TriggerError
from dispatcher.notifications.cron import next_fire_time, parse_cron, parse_timezone
from dispatcher.notifications.triggers import trigger_bulk
from dispatcher.runtime.resources import database
from models import Schedule
from models.types import utcnow

logger = logging.getLogger(__name__)

#: The cron helpers stay importable from here, where schedules' callers found them first.
__all__ = [
    "DueSchedule", "FireReport", "fire", "fire_due", "first_fire_time", "next_fire_time",
    "parse_cron", "parse_timezone", "transaction_id",
]  # fmt: skip
MAX_ERROR_LENGTH = 1000


def first_fire_time(cron: str, timezone: str, now: datetime | None = None) -> datetime:
    return next_fire_time(cron, parse_timezone(timezone), now or utcnow())


def transaction_id(schedule_id: uuid.UUID, due_at: datetime) -> str:
    return f"schedule:{schedule_id}:{due_at.astimezone(UTC).isoformat()}"


@dataclass(frozen=True)
class DueSchedule:
    id: uuid.UUID
    organisation_id: uuid.UUID
    workflow_key: str
    cron: str
    timezone: str
    to: list[Any]
    payload: dict[str, Any]
    next_fire_at: datetime


@dataclass
class FireReport:
    #: Due times triggered by this run.
    fired: int = 0
    #: Due times another run had triggered already (nothing sent again).
    repeated: int = 0
    #: Due times the trigger refused (unknown workflow or subscriber, ...): see ``last_error``.
    refused: int = 0
    #: Due times left for the next run (database or broker trouble).
    failed: int = 0


def fire_due(settings: Settings | None = None, *, now: datetime | None = None) -> FireReport:
    """Fire every active schedule whose ``next_fire_at`` has passed, and advance it."""
    settings = settings or get_settings()
    now = now or utcnow()
    report = FireReport()
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        batch = _due(now, after, settings.schedule_batch_size)
        for item in batch:
            fire(item, now, report)
        if len(batch) < settings.schedule_batch_size:
            return report
        # Keyset paging: a schedule that failed keeps its due time and is not read twice.
        after = (batch[-1].next_fire_at, batch[-1].id)


def _due(now: datetime, after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[DueSchedule]:
    query = select(
        Schedule.id,
        Schedule.organisation_id,
        Schedule.workflow_key,
        Schedule.cron,
        Schedule.timezone,
        Schedule.to,
        Schedule.payload,
        Schedule.next_fire_at,
    ).where(Schedule.active.is_(True), Schedule.next_fire_at <= now)
    if after is not None:
        query = query.where(
            or_(
                Schedule.next_fire_at > after[0],
                and_(Schedule.next_fire_at == after[0], Schedule.id > after[1]),
            )
        )
    with database().session() as session:
        rows = session.execute(query.order_by(Schedule.next_fire_at, Schedule.id).limit(limit))
        return [DueSchedule(*row) for row in rows]


def fire(item: DueSchedule, now: datetime, report: FireReport) -> None:
    """Trigger one due time of one schedule, then move the schedule to its next time."""
    error: str | None = None
    triggered = False
    event = {
        "workflow": item.workflow_key,
        "to": item.to,
        "payload": item.payload,
        "transaction_id": transaction_id(item.id, item.next_fire_at),
    }
    try:
        [receipt] = trigger_bulk(item.organisation_id, [event])
    except TriggerError as exc:
        error = str(exc)[:MAX_ERROR_LENGTH]
        report.refused += 1
        logger.warning("schedule %s: %s", item.id, error)
    except Exception:
        logger.exception("schedule %s: firing failed; the next run tries again", item.id)
        report.failed += 1
        return
    else:
        triggered = True
        if receipt.duplicate:
            report.repeated += 1
        else:
            report.fired += 1
    following: datetime | None
    try:
        zone = parse_timezone(item.timezone)
        following = next_fire_time(item.cron, zone, max(item.next_fire_at, now))
    except ValueError as exc:
        # Validated when stored; only a time zone dropped from the system's data gets here.
        following = None
        error = f"deactivated: {exc}"
        logger.error("schedule %s: %s", item.id, error)
    values: dict[str, Any] = {
        "next_fire_at": following,
        "last_error": error,
        "active": following is not None,
        "updated_at": utcnow(),
    }
    if triggered:
        values["last_fired_at"] = now
    with database().transaction() as session:
        # Only the run that still sees this due time moves it: a concurrent run that fired the
        # same time (as a duplicate) changes nothing.
        session.execute(
            update(Schedule)
            .where(
                Schedule.id == item.id,
                Schedule.active.is_(True),
                Schedule.next_fire_at == item.next_fire_at,
            )
            .values(**values)
        )

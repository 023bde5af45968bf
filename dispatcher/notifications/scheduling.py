"""Scheduled triggers: cron expressions read in a time zone, and the beat job that fires them.

A schedule's cron fields are wall-clock time in its IANA time zone, so a daily ``0 9 * * *`` in
``Europe/London`` fires at 09:00 London time all year, 09:00 UTC in winter and 08:00 UTC in
summer. Across a clock change:

* a time skipped when the clocks go forward fires as if they had not moved yet, that much later
  (01:30 on the night London goes from 01:00 to 02:00 fires at 02:30 summer time);
* a time repeated when the clocks go back fires once, at its first occurrence.

A schedule that must keep a fixed interval of real time through such a night (``*/30 * * * *``)
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
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]
from sqlalchemy import and_, or_, select, update

from dispatcher.config import Settings, get_settings
from dispatcher.errors import TriggerError
from dispatcher.notifications.triggers import trigger_bulk
from dispatcher.runtime.resources import database
from models import Schedule
from models.types import utcnow

logger = logging.getLogger(__name__)

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
#: Wall-clock matches that may map to instants already passed: around a clock change, at most
#: one repeated hour of a schedule that matches every minute.
MAX_STEPS = 1000
MAX_ERROR_LENGTH = 1000


def parse_cron(expression: str) -> str:
    """The expression with its spacing normalised; ``ValueError`` says what is wrong."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise ValueError(f"unknown alias; use one of {', '.join(ALIASES)}")
        return text.lower()
    fields = text.split(" ") if text else []
    if len(fields) != len(FIELD_NAMES):
        raise ValueError(
            "five fields are needed: minute hour day-of-month month day-of-week "
            "(or an alias such as @daily)"
        )
    for position, name in enumerate(FIELD_NAMES):
        alone = ["*"] * len(FIELD_NAMES)
        alone[position] = fields[position]
        if not croniter.is_valid(" ".join(alone)):
            raise ValueError(f"the {name} field is not valid")
    if not croniter.is_valid(text):
        raise ValueError("the fields are not valid together")
    try:
        croniter(text, datetime(2000, 1, 1)).get_next(datetime)  # noqa: DTZ001 - wall clock
    except CroniterBadDateError:
        raise ValueError("the expression matches no date") from None
    return text


#: Files of the zone database that are not zones: the host's own setting, a POSIX rule source.
NOT_ZONES = frozenset({"localtime", "posixrules"})


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - NOT_ZONES


def parse_timezone(name: str) -> zoneinfo.ZoneInfo:
    # A known name only: ZoneInfo() would open any file under the zone directories.
    if name not in _zone_names():
        raise ValueError("not an IANA time zone name (such as Europe/London or UTC)")
    return zoneinfo.ZoneInfo(name)


def next_fire_time(cron: str, zone: zoneinfo.ZoneInfo, after: datetime) -> datetime:
    """The first instant strictly after ``after`` at which ``cron`` matches in ``zone`` (UTC)."""
    iterator = croniter(ALIASES.get(cron, cron), after.astimezone(zone).replace(tzinfo=None))
    for _ in range(MAX_STEPS):
        wall: datetime = iterator.get_next(datetime)
        # fold=0: a repeated time is its first occurrence; a skipped one is read with the
        # offset before the change, which places it that much later.
        moment = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if moment > after:
            return moment
    raise ValueError(f"no time after {after.isoformat()} matches")


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

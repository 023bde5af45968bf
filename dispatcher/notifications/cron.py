"""Cron expressions read as wall-clock time in an IANA time zone (no database, no Celery).

Shared by scheduled triggers (:mod:`dispatcher.notifications.scheduling`) and digest steps
released at a cron time (:mod:`dispatcher.notifications.digest_steps`). A daily ``0 9 * * *``
in ``Europe/London`` fires at 09:00 London time all year, 09:00 UTC in winter and 08:00 UTC in
summer. Across a clock change:

* a time skipped when the clocks go forward fires as if they had not moved yet, that much later
  (01:30 on the night London goes from 01:00 to 02:00 fires at 02:30 summer time);
* a time repeated when the clocks go back fires once, at its first occurrence.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from functools import lru_cache

from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]

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

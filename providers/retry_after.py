"""How long a provider asks to be left alone: its ``Retry-After``, read as RFC 9110 defines it.

RFC 9110 section 10.2.3: ``Retry-After = HTTP-date / delay-seconds``, where ``delay-seconds`` is
``1*DIGIT`` and an HTTP-date (section 5.6.7) is an IMF-fixdate (``Sun, 06 Nov 1994 08:49:37
GMT``) or one of the two obsolete forms a recipient must still accept: RFC 850
(``Sunday, 06-Nov-94 08:49:37 GMT``) and asctime (``Sun Nov  6 08:49:37 1994``).

Every wait a provider states comes out bounded, whatever was sent:

* malformed (``-5``, ``1.5``, ``1e400``, ``inf``, ``nan``, garbage, empty): ``None``, the provider
  stated no wait, and the dispatcher's own backoff applies;
* a date in the past: ``0``;
* enormous (a digit string of any length, a date in the year 9999): :data:`MAX_RETRY_AFTER`.

How long the dispatcher then really waits is its own decision (``retry_after_cap``); this module
only guarantees a finite, non-negative number.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime

#: The longest wait any ``Retry-After`` is read as, in seconds: the value RFC 9111 (section
#: 1.2.2) tells a cache to use for a delta-seconds it cannot represent. About 68 years: far
#: beyond any cap, and far inside what ``timedelta`` and ``datetime`` can add.
MAX_RETRY_AFTER = float(2**31)

#: Digits of the longest delta-seconds read exactly; anything longer is beyond the bound anyway.
_MAX_DIGITS = len(str(int(MAX_RETRY_AFTER)))

_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = f"(?P<month>{'|'.join(_MONTHS)})"
_TIME = r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})"
_IMF_FIXDATE = re.compile(
    rf"{_DAY}, (?P<day>\d{{2}}) {_MONTH} (?P<year>\d{{4}}) {_TIME} GMT", re.ASCII
)
_RFC850_DATE = re.compile(
    rf"{_LONG_DAY}, (?P<day>\d{{2}})-{_MONTH}-(?P<year>\d{{2}}) {_TIME} GMT", re.ASCII
)
_ASCTIME_DATE = re.compile(rf"{_DAY} {_MONTH} (?P<day>[ \d]\d) {_TIME} (?P<year>\d{{4}})", re.ASCII)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (``now``: the POSIX time to count from)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        if len(text) > _MAX_DIGITS:
            return MAX_RETRY_AFTER
        return min(float(int(text)), MAX_RETRY_AFTER)
    current = time.time() if now is None else now
    when = http_date(text, now=current)
    if when is None:
        return None
    return bounded_wait(when - current)


def http_date(text: str, *, now: float) -> float | None:
    """The POSIX time of an HTTP-date in any of its three forms, or ``None``."""
    if found := _IMF_FIXDATE.fullmatch(text) or _ASCTIME_DATE.fullmatch(text):
        year = int(found["year"])
    elif found := _RFC850_DATE.fullmatch(text):
        year = _full_year(int(found["year"]), now)
    else:
        return None
    try:
        when = datetime(
            year,
            _MONTHS.index(found["month"]) + 1,
            int(found["day"]),
            int(found["hour"]),
            int(found["minute"]),
            # A leap second (60) is allowed by the grammar; datetime has none.
            min(int(found["second"]), 59),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    return when.timestamp()


def _full_year(two_digits: int, now: float) -> int:
    """RFC 9110 section 5.6.7: a two-digit year that looks more than 50 years ahead is the most
    recent past year with the same last two digits."""
    this_year = datetime.fromtimestamp(now, tz=UTC).year
    year = this_year - this_year % 100 + two_digits
    return year - 100 if year > this_year + 50 else year


def bounded_wait(value: object) -> float | None:
    """A wait in seconds from a number a provider gave (a header already parsed, a JSON body's
    field), bounded to ``[0, MAX_RETRY_AFTER]``; ``None`` for NaN or what is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return float(min(max(value, 0), int(MAX_RETRY_AFTER)))
    if math.isnan(value):
        return None
    return min(max(value, 0.0), MAX_RETRY_AFTER)

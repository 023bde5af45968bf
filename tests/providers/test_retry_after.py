"""``Retry-After`` read as RFC 9110 (section 10.2.3) defines it, one parser for every provider:
delta-seconds (``1*DIGIT``) or an HTTP-date (IMF-fixdate, and the obsolete RFC 850 and asctime
forms a recipient must accept). Whatever a provider sends, the wait is bounded: malformed is no
wait of the provider's, a past date is zero, an enormous value is :data:`MAX_RETRY_AFTER`."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import httpx
import pytest

from providers.chat_webhook import seconds
from providers.errors import RetryableError
from providers.http import classify_status
from providers.retry_after import MAX_RETRY_AFTER, bounded_wait, parse_retry_after

#: 2026-12-02 00:00:00 GMT, a Wednesday.
NOW = datetime(2026, 12, 2, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # delta-seconds
        ("120", 120.0),
        ("7", 7.0),
        ("  30 ", 30.0),  # optional whitespace around a field value is not part of it
        ("0", 0.0),
        ("000", 0.0),
        ("0042", 42.0),
        ("3600", 3600.0),
        # enormous: bounded, never an overflow (int() refuses a string of 5,000 digits)
        ("2147483648", MAX_RETRY_AFTER),
        ("99999999999999999999", MAX_RETRY_AFTER),
        ("9" * 5000, MAX_RETRY_AFTER),
        # not 1*DIGIT: malformed, so the provider stated no wait
        ("-5", None),
        ("-0", None),
        ("+5", None),
        ("1.5", None),
        ("1e3", None),
        ("1e400", None),
        ("inf", None),
        ("-inf", None),
        ("Infinity", None),
        ("nan", None),
        ("0x10", None),
        ("1_000", None),
        ("5 s", None),
        ("²", None),  # a digit to str.isdigit(), not to HTTP
        ("١٢", None),  # Arabic-Indic digits
        # garbage and nothing
        ("soon", None),
        ("Retry-After: 5", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_delta_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # IMF-fixdate, the form senders use
        ("Wed, 02 Dec 2026 00:02:00 GMT", 120.0),
        ("Wed, 02 Dec 2026 01:00:00 GMT", 3600.0),
        ("Thu, 03 Dec 2026 00:00:00 GMT", 86400.0),
        # obsolete RFC 850 form (two-digit year: 26 is this century, not 1926)
        ("Wednesday, 02-Dec-26 00:02:00 GMT", 120.0),
        # obsolete asctime form (day padded with a space)
        ("Wed Dec  2 00:02:00 2026", 120.0),
        ("Sat Dec 12 00:00:00 2026", 10 * 86400.0),
        # a date in the past, or now, is no wait
        ("Wed, 02 Dec 2026 00:00:00 GMT", 0.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0),
        ("Sun Nov  6 08:49:37 1994", 0.0),
        # a date far ahead is bounded like an enormous delta
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
        # not an HTTP-date: no wait of the provider's
        ("Wed, 02 Dec 2026 00:02:00 +0000", None),  # only GMT
        ("Wed, 02 Dec 2026 00:02:00", None),
        ("wed, 02 dec 2026 00:02:00 gmt", None),  # HTTP-date is case-sensitive
        ("Wed, 31 Feb 2026 00:00:00 GMT", None),  # no such day
        ("Wed, 02 Dec 2026 24:00:00 GMT", None),
        ("Wed, 02 Dec 0000 00:00:00 GMT", None),
        ("2026-12-02T00:02:00Z", None),  # ISO 8601 is not an HTTP-date
        ("Wed, 2 Dec 2026 00:02:00 GMT", None),  # IMF-fixdate pads the day
    ],
)
def test_http_dates(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_a_leap_second_is_read_as_the_second_before() -> None:
    assert parse_retry_after("Wed, 02 Dec 2026 00:01:60 GMT", now=NOW) == 119.0


def test_a_two_digit_year_more_than_50_years_ahead_is_in_the_past() -> None:
    # RFC 9110 section 5.6.7: "77" in 2026 is 1977, not 2077.
    assert parse_retry_after("Friday, 02-Dec-77 00:00:00 GMT", now=NOW) == 0.0
    assert parse_retry_after("Monday, 02-Dec-76 00:00:00 GMT", now=NOW) == pytest.approx(
        datetime(2076, 12, 2, tzinfo=UTC).timestamp() - NOW
    )


def test_without_now_the_clock_is_read() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT") == 0.0
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT") == MAX_RETRY_AFTER


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5.0),
        (1.25, 1.25),
        (-3, 0.0),
        (-math.inf, 0.0),
        (math.inf, MAX_RETRY_AFTER),
        (1e300, MAX_RETRY_AFTER),
        (10**400, MAX_RETRY_AFTER),
        (math.nan, None),
        (None, None),
        (True, None),
        ("5", None),  # a wait is a number here; text goes through parse_retry_after
    ],
)
def test_bounded_wait(value: object, expected: float | None) -> None:
    assert bounded_wait(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(math.inf, MAX_RETRY_AFTER), (-1.0, 0.0), (math.nan, None), (1e300, MAX_RETRY_AFTER)],
)
def test_a_retryable_error_keeps_its_wait_bounded_however_it_is_given(
    value: float, expected: float | None
) -> None:
    error = RetryableError("p", "busy", retry_after=value)
    assert error.retry_after == expected
    error.retry_after = value  # set afterwards, as a provider reading the body does
    assert error.retry_after == expected


@pytest.mark.parametrize(
    ("body_value", "expected"),
    [
        (64.57, 64.57),
        ("12", 12.0),
        (json.loads("1e400"), MAX_RETRY_AFTER),
        (10**400, MAX_RETRY_AFTER),
        (-2, 0.0),
        ("1e400", None),
        ("nan", None),
    ],
)
def test_a_wait_read_from_a_body_is_bounded_too(body_value: object, expected: float | None) -> None:
    assert seconds(body_value) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [("1e400", None), ("inf", None), ("nan", None), ("9" * 5000, MAX_RETRY_AFTER), ("17", 17.0)],
)
def test_a_classified_answer_carries_the_parsed_header(header: str, expected: float | None) -> None:
    error = classify_status("p", httpx.Response(429, headers={"Retry-After": header}))
    assert isinstance(error, RetryableError)
    assert error.retry_after == expected

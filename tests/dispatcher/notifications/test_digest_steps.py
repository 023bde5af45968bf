"""When a digest is released and which key it has: the functional core, without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dispatcher.notifications.digest_steps import (
    MAX_KEY_LENGTH,
    bounded_key,
    digest_zone,
    release_time,
    render_key,
)

DAILY_AT_NINE = {"cron": "0 9 * * *"}


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("first_event", "release"),
    [
        # Saturday 27 March 2027, Berlin on winter time (UTC+1): 09:00 is 08:00 UTC.
        (at(2027, 3, 27, 6, 0), at(2027, 3, 27, 8, 0)),
        # After Saturday's 09:00: Sunday's, the clocks gone forward at 02:00 (UTC+2): 07:00 UTC.
        (at(2027, 3, 27, 8, 0), at(2027, 3, 28, 7, 0)),
        (at(2027, 3, 27, 12, 30), at(2027, 3, 28, 7, 0)),
        # Sunday after the change, before 09:00 local; then after it: Monday's, still summer time.
        (at(2027, 3, 28, 6, 59), at(2027, 3, 28, 7, 0)),
        (at(2027, 3, 28, 7, 0), at(2027, 3, 29, 7, 0)),
        # The other way in October: Saturday 30th on summer time, Sunday 31st on winter time.
        (at(2027, 10, 30, 8, 0), at(2027, 10, 31, 8, 0)),
    ],
)
def test_a_cron_digest_is_released_at_nine_berlin_time_across_the_clock_change(
    first_event: datetime, release: datetime
) -> None:
    assert release_time(DAILY_AT_NINE, "Europe/Berlin", first_event) == release


@pytest.mark.parametrize(
    ("config", "subscriber_zone", "release"),
    [
        # The step's own time zone wins over the subscriber's.
        ({**DAILY_AT_NINE, "timezone": "America/New_York"}, "Europe/Berlin", at(2027, 3, 27, 13)),
        # New York changed two weeks before Berlin: already on summer time (UTC-4).
        (DAILY_AT_NINE, "America/New_York", at(2027, 3, 27, 13)),
        # No time zone, or one that is not a zone name: UTC.
        (DAILY_AT_NINE, None, at(2027, 3, 27, 9)),
        (DAILY_AT_NINE, "Not/AZone", at(2027, 3, 27, 9)),
        (DAILY_AT_NINE, "../../etc/passwd", at(2027, 3, 27, 9)),
        # A window counts seconds from the first event, whatever the zone.
        ({"window_seconds": 90}, "Europe/Berlin", at(2027, 3, 27, 6, 1, 30)),
        # A cron alias, stored normalised.
        ({"cron": "@hourly"}, "Asia/Kolkata", at(2027, 3, 27, 6, 30)),
    ],
)
def test_the_zone_is_the_steps_then_the_subscribers_then_utc(
    config: dict[str, Any], subscriber_zone: str | None, release: datetime
) -> None:
    assert release_time(config, subscriber_zone, at(2027, 3, 27, 6, 0)) == release


def test_a_zone_dropped_from_the_systems_data_falls_back_to_the_subscribers() -> None:
    assert str(digest_zone({"timezone": "Gone/Away"}, "Europe/Berlin")) == "Europe/Berlin"


@pytest.mark.parametrize(
    ("source", "payload", "expected", "fails"),
    [
        ("{{ payload.project }}", {"project": "alpha"}, "alpha", False),
        ("{{ payload.project }}-{{ subscriber.data.team }}", {"project": "a"}, "a-red", False),
        ("  {{ payload.project }}\n", {"project": "alpha"}, "alpha", False),
        # Renders empty: no key.
        ("{{ payload.project }}", {}, None, False),
        # Does not render (an attribute of something undefined): no key, and why.
        ("{{ payload.group.id }}", {}, None, True),
        ("{{ payload.items | map(attribute='x') | join(1/0) }}", {"items": [1]}, None, True),
    ],
)
def test_a_key_renders_from_payload_subscriber_and_actor_or_is_none(
    source: str, payload: dict[str, Any], expected: str | None, fails: bool
) -> None:
    context = {"payload": payload, "actor": {}, "subscriber": {"data": {"team": "red"}}}
    key, problem = render_key(source, context)
    assert key == expected
    assert (problem is not None) is fails


def test_a_long_key_is_bounded_and_two_long_keys_stay_apart() -> None:
    first, second = "x" * 300 + "1", "x" * 300 + "2"
    assert len(bounded_key(first)) == MAX_KEY_LENGTH == len(bounded_key(second))
    assert bounded_key(first) != bounded_key(second)
    assert bounded_key(first).startswith("x" * 191 + "~")
    assert bounded_key("y" * MAX_KEY_LENGTH) == "y" * MAX_KEY_LENGTH
    key, problem = render_key("{{ payload.k }}", {"payload": {"k": first}})
    assert (key, problem) == (bounded_key(first), None)

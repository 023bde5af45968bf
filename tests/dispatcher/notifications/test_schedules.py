"""Schedules: cron expressions in a time zone (DST included) and the schedule actions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dispatcher import ActionArgumentsError, Err, ErrorCode, Ok, run_action
from dispatcher.notifications.scheduling import next_fire_time, parse_cron, parse_timezone
from models import Schedule
from models.types import utcnow
from tests.dispatcher.notify_support import EMAIL_STEP, subscriber, workflow
from tests.dispatcher.support import created_id, fetch

LONDON = ZoneInfo("Europe/London")


def fire_times(cron: str, zone: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    times = []
    for _ in range(count):
        after = next_fire_time(cron, zone, after)
        times.append(after)
    return times


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- cron in a time zone -------------------------------------------------------------------------


def test_daily_nine_in_london_follows_the_clock_across_the_spring_change() -> None:
    # 2026-03-29 01:00 GMT the clocks go forward to 02:00 BST.
    times = fire_times("0 9 * * *", LONDON, at("2026-03-27T12:00:00"), 3)
    assert times == [at("2026-03-28T09:00:00"), at("2026-03-29T08:00:00"), at("2026-03-30T08:00")]
    assert {time.astimezone(LONDON).strftime("%H:%M") for time in times} == {"09:00"}


def test_daily_nine_in_london_follows_the_clock_across_the_autumn_change() -> None:
    # 2026-10-25 02:00 BST the clocks go back to 01:00 GMT.
    times = fire_times("0 9 * * *", LONDON, at("2026-10-23T12:00:00"), 3)
    assert times == [at("2026-10-24T08:00:00"), at("2026-10-25T09:00:00"), at("2026-10-26T09:00")]


def test_a_time_skipped_by_the_spring_change_fires_once_that_much_later() -> None:
    times = fire_times("30 1 * * *", LONDON, at("2026-03-28T12:00:00"), 2)
    # 01:30 does not exist on the 29th: it fires at 02:30 BST, then at 01:30 BST again.
    assert times == [at("2026-03-29T01:30:00"), at("2026-03-30T00:30:00")]


def test_a_time_repeated_by_the_autumn_change_fires_once() -> None:
    times = fire_times("30 1 * * *", LONDON, at("2026-10-24T12:00:00"), 2)
    # 01:30 happens twice on the 25th (BST, then GMT): only the first fires.
    assert times == [at("2026-10-25T00:30:00"), at("2026-10-26T01:30:00")]


def test_the_next_time_is_never_in_the_past_during_a_repeated_hour() -> None:
    # 01:10 GMT is the second 01:10 of that night; 01:30 (first occurrence) has passed.
    assert next_fire_time("*/30 * * * *", LONDON, at("2026-10-25T01:10")) == at("2026-10-25T02:00")


def test_every_half_hour_keeps_real_time_through_the_spring_change() -> None:
    times = fire_times("*/30 * * * *", LONDON, at("2026-03-29T00:10:00"), 4)
    assert times == [at("2026-03-29T00:30"), at("2026-03-29T01:00"), at("2026-03-29T01:30"),
                     at("2026-03-29T02:00")]  # fmt: skip


def test_fire_times_always_move_forward_through_a_whole_year_of_changes() -> None:
    for cron in ("*/20 * * * *", "30 1 * * *", "0 2 * * 0"):
        times = fire_times(cron, LONDON, at("2026-01-01T00:00"), 400 if "*/" in cron else 60)
        assert times == sorted(set(times)), cron


def test_utc_and_aliases() -> None:
    utc = ZoneInfo("UTC")
    assert next_fire_time("@daily", utc, at("2026-05-01T10:00")) == at("2026-05-02T00:00")
    assert next_fire_time("@hourly", utc, at("2026-05-01T10:00")) == at("2026-05-01T11:00")
    # Strictly after: a due time equal to ``after`` is not repeated.
    assert next_fire_time("0 9 * * *", utc, at("2026-05-01T09:00")) == at("2026-05-02T09:00")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "five fields are needed"),
        ("* * * *", "five fields are needed"),
        ("0 0 * * * 2030", "five fields are needed"),
        ("61 * * * *", "the minute field is not valid"),
        ("0 24 * * *", "the hour field is not valid"),
        ("0 0 32 * *", "the day-of-month field is not valid"),
        ("0 0 * 13 *", "the month field is not valid"),
        ("0 0 * * funday", "the day-of-week field is not valid"),
        ("@reboot", "unknown alias"),
        ("0 0 30 2 *", "matches no date"),
    ],
)
def test_bad_cron_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cron(expression)


def test_cron_spacing_is_normalised() -> None:
    assert parse_cron("  0  9 * *   mon-fri ") == "0 9 * * mon-fri"
    assert parse_cron("@DAILY") == "@daily"


@pytest.mark.parametrize("name", ["Mars/Olympus", "europe/london", "../etc/passwd", "localtime"])
def test_only_iana_time_zone_names_are_accepted(name: str) -> None:
    with pytest.raises(ValueError, match="not an IANA time zone name"):
        parse_timezone(name)


# --- actions ------------------------------------------------------------------------------------


def field_of(error: ActionArgumentsError) -> list[str]:
    return [item["field"] for item in error.errors]


def test_create_schedule_stores_it_with_its_first_fire_time(organisation_id: uuid.UUID) -> None:
    subscriber(organisation_id, "ada")
    workflow(organisation_id, "digest", [EMAIL_STEP])
    before = utcnow()
    schedule_id = created_id(
        run_action(
            "create_schedule",
            {
                "workflow": "digest", "cron": "0 9 * * *", "timezone": "Europe/London",
                "to": ["ada", {"topic": "news"}, {"subscriber_id": "bo", "email": "bo@example.com"}],
                "payload": {"code": "7"},
            },
            organisation_id=organisation_id,
        )
    )  # fmt: skip
    schedule = fetch(Schedule, schedule_id)
    assert (schedule.workflow_key, schedule.cron, schedule.timezone, schedule.active) == (
        "digest", "0 9 * * *", "Europe/London", True,
    )  # fmt: skip
    # Inline subscribers keep only the fields given (a firing must not blank the others).
    assert schedule.to == [
        "ada",
        {"topic": "news"},
        {"subscriber_id": "bo", "email": "bo@example.com"},
    ]
    assert schedule.payload == {"code": "7"}
    assert schedule.next_fire_at == next_fire_time("0 9 * * *", LONDON, before)
    assert schedule.last_fired_at is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "every day"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"to": []}, "to"),
        ({"to": [{"topic": "news", "extra": 1}]}, "to.0.TopicTarget.extra"),
        ({"workflow": "Not A Key"}, "workflow"),
    ],
)
def test_bad_schedule_arguments_name_the_field(
    organisation_id: uuid.UUID, changes: dict[str, object], field: str
) -> None:
    arguments = {"workflow": "digest", "cron": "0 9 * * *", "to": ["ada"], **changes}
    with pytest.raises(ActionArgumentsError) as raised:
        run_action("create_schedule", arguments, organisation_id=organisation_id)
    assert field in field_of(raised.value)
    assert "Mars" not in str(raised.value)  # input values are not echoed


def test_a_schedule_for_an_unknown_workflow_is_refused(organisation_id: uuid.UUID) -> None:
    result = run_action(
        "create_schedule",
        {"workflow": "nope", "cron": "@daily", "to": ["ada"]},
        organisation_id=organisation_id,
    )
    assert isinstance(result, Err)
    assert (result.code, result.details) == ("not_found", {"field": "workflow"})


def test_an_oversized_payload_is_refused(
    organisation_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dispatcher.config import reset_settings

    workflow(organisation_id, "digest", [EMAIL_STEP])
    monkeypatch.setenv("DISPATCHER_MAX_PAYLOAD_BYTES", "100")
    reset_settings()
    try:
        result = run_action(
            "create_schedule",
            {"workflow": "digest", "cron": "@daily", "to": ["ada"], "payload": {"x": "y" * 200}},
            organisation_id=organisation_id,
        )
    finally:
        monkeypatch.undo()
        reset_settings()
    assert isinstance(result, Err)
    assert result.code is ErrorCode.INVALID_ARGS
    assert [item["field"] for item in result.details["errors"]] == ["payload"]


def test_deactivate_stops_the_schedule(organisation_id: uuid.UUID) -> None:
    workflow(organisation_id, "digest", [EMAIL_STEP])
    schedule_id = created_id(
        run_action(
            "create_schedule",
            {"workflow": "digest", "cron": "@hourly", "to": ["ada"]},
            organisation_id=organisation_id,
        )
    )
    result = run_action(
        "deactivate_schedule", {"schedule_id": str(schedule_id)}, organisation_id=organisation_id
    )
    assert result == Ok(str(schedule_id))
    schedule = fetch(Schedule, schedule_id)
    assert (schedule.active, schedule.next_fire_at) == (False, None)


def test_another_organisations_schedule_cannot_be_deactivated(organisation_id: uuid.UUID) -> None:
    from dispatcher.organisations import create_organisation

    workflow(organisation_id, "digest", [EMAIL_STEP])
    schedule_id = created_id(
        run_action(
            "create_schedule",
            {"workflow": "digest", "cron": "@hourly", "to": ["ada"]},
            organisation_id=organisation_id,
        )
    )
    other = create_organisation(f"Other {uuid.uuid4().hex[:6]}")
    result = run_action(
        "deactivate_schedule", {"schedule_id": str(schedule_id)}, organisation_id=other
    )
    assert isinstance(result, Err)
    assert (result.code, result.details["field"]) == ("not_found", "schedule_id")
    schedule = fetch(Schedule, schedule_id)
    assert schedule.active is True
    assert schedule.next_fire_at is not None

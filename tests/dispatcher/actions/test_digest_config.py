"""A digest step's config, checked in the producer: each bad option named down to its field."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dispatcher import ActionArgumentsError
from dispatcher.producer import validate_action

EMAIL = {"kind": "email", "template": {"body": "{{ digest.count }}"}}


def checked(config: dict[str, Any]) -> dict[str, Any]:
    steps = [{"kind": "digest", "config": config}, EMAIL]
    _, arguments = validate_action(
        "create_workflow", {"key": "k", "name": "n", "steps": steps}, uuid.uuid4()
    )
    stored: dict[str, Any] = arguments["steps"][0]["config"]
    return stored


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        ({}, "window_seconds", "a digest needs window_seconds"),
        ({"key": "{{ payload.p }}"}, "window_seconds", "or cron"),
        ({"window_seconds": 0}, "window_seconds", "a number of seconds between 1 and"),
        ({"window_seconds": "60"}, "window_seconds", "a number of seconds"),
        ({"window_seconds": True}, "window_seconds", "a number of seconds"),
        ({"window_seconds": 60, "cron": "0 9 * * *"}, "cron", "not both"),
        ({"cron": "0 25 * * *"}, "cron", "the hour field is not valid"),
        ({"cron": "0 9 * *"}, "cron", "five fields are needed"),
        ({"cron": "@fortnightly"}, "cron", "unknown alias"),
        ({"cron": "0 0 30 2 *"}, "cron", "matches no date"),
        ({"cron": ""}, "cron", "a cron expression such as"),
        ({"cron": 9}, "cron", "a cron expression such as"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone", "not an IANA time zone"),
        ({"cron": "0 9 * * *", "timezone": "localtime"}, "timezone", "not an IANA time zone"),
        ({"cron": "0 9 * * *", "timezone": 1}, "timezone", "an IANA time zone name"),
        ({"window_seconds": 60, "timezone": "UTC"}, "timezone", "only a cron digest"),
        ({"window_seconds": 60, "key": "{{ payload.p"}, "key", "template syntax error on line 1"),
        ({"window_seconds": 60, "key": "{% for %}"}, "key", "template syntax error"),
        ({"window_seconds": 60, "key": ""}, "key", "a template such as"),
        ({"window_seconds": 60, "key": ["p"]}, "key", "a template such as"),
        ({"window_seconds": 60, "key": "x" * 1001}, "key", "at most 1000 characters"),
        ({"window_seconds": 60, "windows": 1}, "windows", "not a digest option"),
    ],
)
def test_a_bad_digest_config_is_refused_naming_the_option(
    config: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ActionArgumentsError) as refused:
        checked(config)
    errors = {item["field"]: item["message"] for item in refused.value.errors}
    assert list(errors) == [f"steps.0.config.{field}"], errors
    assert message in errors[f"steps.0.config.{field}"]
    assert f"steps.0.config.{field}: " in str(refused.value)


@pytest.mark.parametrize(
    ("config", "stored"),
    [
        ({"window_seconds": 60}, {"window_seconds": 60}),
        ({"window_seconds": 0.5, "key": "{{ payload.p }}"}, {"window_seconds": 0.5,
                                                              "key": "{{ payload.p }}"}),
        ({"cron": " 0  9 * * 1-5 "}, {"cron": "0 9 * * 1-5"}),
        ({"cron": "@Daily", "timezone": "Europe/Berlin"}, {"cron": "@daily",
                                                            "timezone": "Europe/Berlin"}),
        ({"cron": "0 9 * * *", "key": "{{ subscriber.data.team }}-{{ actor.id }}"},
         {"cron": "0 9 * * *", "key": "{{ subscriber.data.team }}-{{ actor.id }}"}),
    ],
)  # fmt: skip
def test_a_good_digest_config_is_stored_with_its_cron_normalised(
    config: dict[str, Any], stored: dict[str, Any]
) -> None:
    assert checked(config) == stored

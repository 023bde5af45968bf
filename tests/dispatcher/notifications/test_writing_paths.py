"""The two ways an event's rows are planned give the same rows: the general planner, which walks
every step, and the one for workflows of channel steps due at once (OTPs, password resets),
which copies the columns it worked out once per call."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from dispatcher.config import get_settings
from dispatcher.notifications import writing
from dispatcher.notifications.events import TriggerEvent
from dispatcher.runtime.resources import database
from models import Workflow
from tests.dispatcher.notify_support import EMAIL_STEP, subscriber, workflow

SMS_STEP = {"kind": "sms", "template": {"body": "Code {{ payload.code }}"}}


def loaded(organisation: uuid.UUID, key: str) -> Workflow:
    """The workflow with its steps, as a trigger's writing reads it."""
    with database().session() as session:
        probe = TriggerEvent(workflow=key, to=["x"], payload={"code": "1"})
        return writing.check_workflow(session, organisation, probe)


def comparable(planned: Any) -> dict[str, Any]:
    """The planned rows with their ids numbered in order and their times relative to the
    notification's creation, so two plans made moments apart compare equal."""
    numbers: dict[Any, int] = {}

    def number(value: Any) -> Any:
        if isinstance(value, uuid.UUID) and value in planned_ids:
            return numbers.setdefault(value, len(numbers))
        return value

    def row(values: dict[str, Any]) -> dict[str, Any]:
        created = values["created_at"]
        return {
            name: (value - created if isinstance(value, datetime) else number(value))
            for name, value in sorted(values.items())
        }

    planned_ids = {r["id"] for r in planned.notifications + planned.deliveries}
    return {
        "notifications": [row(r) for r in planned.notifications],
        "deliveries": [row(r) for r in planned.deliveries],
        "due_now": [number(item) for item in planned.due_now],
    }


@pytest.mark.parametrize("overrides", [{}, {"email": {"subject": "Yours"}}])
def test_channel_steps_due_at_once_are_planned_as_the_general_planner_plans_them(
    sqlite_organisation: uuid.UUID, overrides: dict[str, Any]
) -> None:
    workflow(sqlite_organisation, "otp", [EMAIL_STEP, SMS_STEP], critical=True)
    recipients = [subscriber(sqlite_organisation, name, phone="+15550001") for name in "ab"]
    flow = loaded(sqlite_organisation, "otp")
    event = TriggerEvent(workflow="otp", to=["a", "b"], payload={"code": "1"}, overrides=overrides)
    shape = writing._shape(flow)
    assert shape.immediate is not None
    settings = get_settings()
    with database().session() as session:
        general = writing._plan(session, sqlite_organisation, flow, event, recipients, settings, {})
    quick = writing._plan_immediate(
        sqlite_organisation, flow, shape.immediate, event, recipients, settings
    )
    assert comparable(quick) == comparable(general)
    assert len(quick.deliveries) == len(quick.due_now) == 4


@pytest.mark.parametrize(
    "steps",
    [
        [{"kind": "delay", "config": {"seconds": 60}}, EMAIL_STEP],
        [EMAIL_STEP, {**SMS_STEP, "config": {"wait_for": {"step": 0, "status": "opened",
                                                          "within": 60}}}],
        [{"kind": "digest", "config": {"window_seconds": 60}}, EMAIL_STEP],
    ],
    ids=["delay", "wait_for", "digest"],
)  # fmt: skip
def test_a_workflow_with_any_other_step_takes_the_general_planner(
    sqlite_organisation: uuid.UUID, steps: list[dict[str, Any]]
) -> None:
    workflow(sqlite_organisation, "other", steps)
    assert writing._shape(loaded(sqlite_organisation, "other")).immediate is None

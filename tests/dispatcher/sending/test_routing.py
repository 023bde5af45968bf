"""The sending side of status-driven routing: reading the options, the due time of a waiting
step, and the wait's verdict at due time (tables)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatcher.sending.routing import (
    Earlier,
    WaitFor,
    confirm_within,
    decide_wait,
    due_after_wait,
)
from models import DeliveryStatus

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OPENED_IN_60 = WaitFor(step=0, status="opened", within=60)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, None),
        ({"success": "sent"}, None),
        ({"success": {"delivered_within": 30}}, 30.0),
        ({"success": {"delivered_within": -1}}, None),  # stored by hand: today's rule
    ],
)
def test_confirm_within(config: dict[str, Any], expected: float | None) -> None:
    assert confirm_within(config) == expected


def test_a_waiting_step_is_due_after_the_earlier_steps_due_time_plus_the_wait() -> None:
    config = {"wait_for": {"step": 0, "status": "opened", "within": 60}}
    dues = {0: NOW}
    assert due_after_wait(config, NOW, dues) == NOW + timedelta(seconds=60)
    assert due_after_wait(config, NOW + timedelta(hours=1), dues) == NOW + timedelta(hours=1)
    assert due_after_wait({}, NOW, dues) == NOW


@pytest.mark.parametrize(
    ("earlier", "expected"),
    [
        (None, ("send", 0.0)),
        (Earlier(DeliveryStatus.QUEUED, None), ("later", 60.0)),
        (Earlier(DeliveryStatus.RETRYING, None), ("later", 60.0)),
        (Earlier(DeliveryStatus.SENT, NOW - timedelta(seconds=20)), ("later", 40.0)),
        (Earlier(DeliveryStatus.SENT, NOW - timedelta(seconds=60)), ("send", 0.0)),
        (
            Earlier(DeliveryStatus.SENT, NOW - timedelta(seconds=61), frozenset({"delivered"})),
            ("send", 0.0),
        ),
        (
            Earlier(DeliveryStatus.SENT, NOW - timedelta(seconds=20), frozenset({"opened"})),
            ("skip", 0.0),
        ),
        (
            Earlier(DeliveryStatus.SENT, NOW - timedelta(seconds=90), frozenset({"opened"})),
            ("skip", 0.0),
        ),
        (Earlier(DeliveryStatus.FAILED, None), ("send", 0.0)),
        (Earlier(DeliveryStatus.SKIPPED, None), ("send", 0.0)),
    ],
)
def test_the_wait_verdict(earlier: Earlier | None, expected: tuple[str, float]) -> None:
    verdict = decide_wait(OPENED_IN_60, earlier, NOW)
    assert (verdict.action, verdict.delay) == expected


def test_a_skip_names_the_condition() -> None:
    earlier = Earlier(DeliveryStatus.SENT, NOW, frozenset({"opened"}))
    assert decide_wait(OPENED_IN_60, earlier, NOW).reason == (
        "wait_for: step 0 opened within 60 s: it was opened"
    )

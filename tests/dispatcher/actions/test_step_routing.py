"""The routing options of workflow steps, refused with the full path of what is wrong."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dispatcher import ActionArgumentsError
from dispatcher.producer import validate_action

EMAIL = {"kind": "email", "template": {"body": "b"}}
IN_APP = {"kind": "in_app", "template": {"body": "b"}}
DELAY = {"kind": "delay", "config": {"seconds": 5}}


def sms(**config: Any) -> dict[str, Any]:
    return {"kind": "sms", "template": {"body": "b"}, "config": config}


def errors_of(steps: list[dict[str, Any]]) -> dict[str, str]:
    try:
        validate_action("create_workflow", {"key": "k", "name": "n", "steps": steps}, uuid.uuid4())
    except ActionArgumentsError as exc:
        return {item["field"]: item["message"] for item in exc.errors}
    return {}


WAIT = {"step": 0, "status": "opened", "within": 60}


@pytest.mark.parametrize(
    ("steps", "field", "message"),
    [
        ([sms(success="sent")], None, None),
        ([sms(success={"delivered_within": 30})], None, None),
        ([EMAIL, sms(wait_for=WAIT)], None, None),
        ([IN_APP, sms(wait_for={**WAIT, "status": "read"})], None, None),
        ([sms(success="delivered")], "steps.0.config.success", 'either "sent"'),
        (
            [sms(success={"delivered_within": 0})],
            "steps.0.config.success.delivered_within",
            "greater than 0",
        ),
        ([sms(success={"within": 5})], "steps.0.config.success.within", "Extra inputs"),
        (
            [IN_APP | {"config": {"success": {"delivered_within": 5}}}],
            "steps.0.config.success",
            "in-app",
        ),
        (
            [DELAY | {"config": {"seconds": 5, "success": "sent"}}],
            "steps.0.config.success",
            "delay step",
        ),
        (
            [EMAIL, sms(wait_for={**WAIT, "step": 1})],
            "steps.1.config.wait_for.step",
            "earlier step (0)",
        ),
        ([DELAY, sms(wait_for=WAIT)], "steps.1.config.wait_for.step", "delay step"),
        (
            [EMAIL, sms(wait_for={**WAIT, "status": "read"})],
            "steps.1.config.wait_for.status",
            "in-app step's mark",
        ),
        ([IN_APP, sms(wait_for=WAIT)], "steps.1.config.wait_for.status", "'seen' or 'read'"),
        (
            [EMAIL, sms(wait_for={**WAIT, "status": "bounced"})],
            "steps.1.config.wait_for.status",
            "Input should be",
        ),
        (
            [EMAIL, sms(wait_for={"step": 0, "status": "opened"})],
            "steps.1.config.wait_for.within",
            "Field required",
        ),
        ([EMAIL, sms(wait_for=3600)], "steps.1.config.wait_for", '"step": POSITION'),
    ],
)
def test_routing_options(
    steps: list[dict[str, Any]], field: str | None, message: str | None
) -> None:
    errors = errors_of(steps)
    if field is None:
        assert errors == {}
    else:
        assert field in errors, errors
        assert message is not None
        assert message in errors[field]

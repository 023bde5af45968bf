"""Workflow arguments: the step shape, checked in the producer before anything is enqueued."""

from __future__ import annotations

import uuid

import pytest

from dispatcher import ActionArgumentsError
from dispatcher.producer import validate_action


def refused(steps: list[dict[str, object]]) -> dict[str, str]:
    with pytest.raises(ActionArgumentsError) as caught:
        validate_action("create_workflow", {"key": "k", "name": "n", "steps": steps}, uuid.uuid4())
    return {item["field"]: item["message"] for item in caught.value.errors}


def test_template_fields_beside_the_kind_are_told_to_go_under_template() -> None:
    errors = refused([{"kind": "email", "subject": "Hi", "body": "Code {{ payload.code }}"}])
    assert set(errors) == {"steps.0.subject", "steps.0.body"}
    assert errors["steps.0.subject"].startswith("put template fields under template")
    assert '{"template": {"subject": ...}}' in errors["steps.0.subject"]


def test_other_unknown_step_keys_keep_the_plain_error_beside_the_hint() -> None:
    errors = refused([{"kind": "email", "template": {"body": "b"}}, {"kind": "sms", "title": "t",
                      "colour": "red", "template": {"body": "b"}}])  # fmt: skip
    assert errors == {
        "steps.1.title": 'put template fields under template: {"template": {"title": ...}}',
        "steps.1.colour": "Extra inputs are not permitted",
    }


def test_a_step_with_its_template_under_template_is_accepted() -> None:
    step = {"kind": "email", "template": {"subject": "Hi", "body": "b"}}
    _, arguments = validate_action(
        "create_workflow", {"key": "k", "name": "n", "steps": [step]}, uuid.uuid4()
    )
    assert arguments["steps"][0]["template"] == {"subject": "Hi", "body": "b"}

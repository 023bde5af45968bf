"""Limits on producer input and on sending, each refused with an error naming the field and the
limit: payload size, template size, recipients per trigger, attempts per delivery."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest

from dispatcher import ActionArgumentsError, Err, TriggerError, run_action, trigger, trigger_bulk
from dispatcher.actions.workflows import MAX_TEMPLATE_LENGTH
from dispatcher.config import get_settings, reset_settings
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.notifications.status import transaction_status
from dispatcher.organisations import create_organisation
from dispatcher.results import ErrorCode
from models import Notification
from tests.dispatcher.notify_support import act, attempts, subscriber, wire, workflow
from tests.dispatcher.support import count, raw_on_worker
from tests.security.support import (
    BASE_ARGUMENTS,
    Names,
    build_world,
    email_step,
    parked,
    send_parked,
)

pytestmark = pytest.mark.usefixtures("postgres_url", "redis_url")


def refused(call: Callable[..., object], *args: object, **kwargs: object) -> list[dict[str, str]]:
    with pytest.raises(TriggerError) as caught:
        call(*args, **kwargs)
    return caught.value.errors


@pytest.fixture
def ready(organisation_id: uuid.UUID) -> uuid.UUID:
    subscriber(organisation_id, "ada")
    subscriber(organisation_id, "bo")
    workflow(organisation_id, "w", parked(email_step()))
    return organisation_id


def test_payload_size_is_limited_with_the_size_and_the_limit_named(ready: uuid.UUID) -> None:
    limit = get_settings().max_payload_bytes
    envelope = len(json.dumps({"code": ""}, separators=(",", ":")))
    at_limit = {"code": "x" * (limit - envelope)}
    over = {"code": "x" * (limit - envelope + 1)}

    [error] = refused(trigger, ready, "w", "ada", over)
    assert error == {
        "field": "payload",
        "message": f"payload is {limit + 1} bytes; the limit is {limit}",
    }
    [error] = refused(trigger_bulk, ready, [{"workflow": "w", "to": "ada", "payload": at_limit},
                                            {"workflow": "w", "to": "ada", "payload": over}])  # fmt: skip
    assert error["field"] == "events.1.payload"
    # Everything stored with each notification counts, not only the payload.
    [error] = refused(trigger, ready, "w", "ada", {}, actor={"name": "x" * limit})
    assert error["field"] == "actor"
    [error] = refused(trigger, ready, "w", "ada", {}, overrides={"email": {"subject": "x" * limit}})
    assert error["field"] == "overrides"
    inline = {"subscriber_id": "cy", "data": {"bio": "x" * limit}}
    [error] = refused(trigger, ready, "w", ["ada", inline], {})
    assert error["field"] == "to.1"
    assert count(Notification, organisation_id=ready) == 0

    assert not trigger(ready, "w", "ada", at_limit).duplicate


def test_template_size_is_limited_when_the_workflow_is_created(organisation_id: uuid.UUID) -> None:
    def create(body: str) -> dict[str, object]:
        return {"key": "big", "name": "Big", "steps": [email_step(body)]}

    with pytest.raises(ActionArgumentsError) as caught:
        run_action("create_workflow", create("x" * (MAX_TEMPLATE_LENGTH + 1)),
                   organisation_id=organisation_id)  # fmt: skip
    [error] = caught.value.errors
    assert error["field"] == "steps.0.template.body"
    assert f"template longer than {MAX_TEMPLATE_LENGTH} characters" in error["message"]
    assert "xxxx" not in str(caught.value)  # the input is not echoed
    assert act(organisation_id, "create_workflow", create("x" * MAX_TEMPLATE_LENGTH))


@pytest.mark.usefixtures("worker")
def test_template_size_is_limited_on_the_worker_too(organisation_id: uuid.UUID) -> None:
    arguments = {
        "key": "big",
        "name": "Big",
        "steps": [email_step("x" * (MAX_TEMPLATE_LENGTH + 1))],
    }
    result = raw_on_worker("create_workflow", organisation_id, arguments)
    assert isinstance(result, Err)
    assert result.code == ErrorCode.INVALID_ARGS
    assert [item["field"] for item in result.details["errors"]] == ["steps.0.template.body"]


@pytest.fixture
def three_recipients(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("DISPATCHER_MAX_RECIPIENTS_PER_TRIGGER", "3")
    reset_settings()
    assert get_settings().max_recipients_per_trigger == 3
    yield 3
    monkeypatch.undo()
    reset_settings()


@pytest.mark.usefixtures("three_recipients")
def test_recipients_per_trigger_are_limited_however_they_are_named(ready: uuid.UUID) -> None:
    for name in ("cy", "di"):
        subscriber(ready, name)
    members = [str(act(ready, "create_subscriber", {"external_id": f"m{i}"})) for i in range(4)]
    act(ready, "create_topic", {"key": "four", "name": "Four", "subscriber_ids": members})
    act(ready, "create_topic", {"key": "two", "name": "Two", "subscriber_ids": members[:2]})
    too_many = [
        ["ada", "bo", "cy", "di"],
        {"topic": "four"},
        ["ada", "bo", {"topic": "two"}],
        ["ada", "bo", {"subscriber_id": "new-1"}, {"subscriber_id": "new-2"}],
    ]
    for to in too_many:
        [error] = refused(trigger, ready, "w", to, {})
        assert error == {"field": "to", "message": "more than 3 recipients in one trigger"}, to
    [error] = refused(trigger_bulk, ready, [{"workflow": "w", "to": "ada"},
                                            {"workflow": "w", "to": {"topic": "four"}}])  # fmt: skip
    assert error["field"] == "events.1.to"
    assert count(Notification, organisation_id=ready) == 0
    # A repeated subscriber is notified once.
    receipt = trigger(ready, "w", ["ada", "bo", "ada"], {})
    assert len(receipt.notification_ids) == 2


def test_a_trigger_to_more_ids_than_one_query_can_hold_gets_a_field_error(ready: uuid.UUID) -> None:
    # PostgreSQL takes at most 65,535 parameters per statement: the lookup must not fail there.
    to = ["ada", *(f"missing-{i}" for i in range(70_000))]
    errors = refused(trigger, ready, "w", to, {})
    assert errors[0] == {
        "field": "to.1",
        "message": "no subscriber 'missing-0' in this organisation",
    }
    assert len(errors) <= 20


def test_more_targets_than_recipients_allowed_are_refused_before_any_lookup(
    ready: uuid.UUID,
) -> None:
    limit = get_settings().max_recipients_per_trigger
    [error] = refused(trigger, ready, "w", [f"u{i}" for i in range(limit + 1)], {})
    assert error["field"] == "to"


def test_attempts_per_delivery_are_limited_over_all_integrations(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    failing = {"default": "500"}
    wire(fake_provider, organisation_id, names=("one", "two", "three"),
         behaviours={"one": failing, "two": failing, "three": failing})  # fmt: skip
    subscriber(organisation_id, "ada")
    workflow(organisation_id, "w", parked(email_step()))
    receipt = trigger(organisation_id, "w", "ada", {})
    send_parked(organisation_id, max_attempts_per_delivery=2, max_attempts_per_integration=3)
    [view] = transaction_status(organisation_id, receipt.transaction_id)
    assert view.status == "failed"
    assert view.attempts == 2
    assert (view.last_error or "").startswith("gave up after 2 attempts: fake_http: HTTP 500")
    assert attempts(view.delivery_id) == [("one", "retryable", 500)] * 2


def test_attempts_per_integration_are_limited_then_the_next_is_tried(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    failing = {"default": "500"}
    wire(fake_provider, organisation_id, names=("one", "two"),
         behaviours={"one": failing, "two": failing})  # fmt: skip
    subscriber(organisation_id, "ada")
    workflow(organisation_id, "w", parked(email_step()))
    receipt = trigger(organisation_id, "w", "ada", {})
    send_parked(organisation_id, max_attempts_per_delivery=12, max_attempts_per_integration=2)
    [view] = transaction_status(organisation_id, receipt.transaction_id)
    assert (view.status, view.attempts) == ("failed", 4)
    assert (
        attempts(view.delivery_id)
        == [("one", "retryable", 500)] * 2 + [("two", "retryable", 500)] * 2
    )


@pytest.mark.parametrize(
    ("action", "field", "width"),
    [
        ("add_group_member", "role", 50),
        ("assign_lesson", "role", 100),
        ("create_tool", "action", 100),
        ("create_integration", "environment", 50),
        ("create_user", "name", 200),
    ],
)
def test_text_longer_than_its_column_is_refused_naming_the_field(
    fake_provider: FakeProviderServer, action: str, field: str, width: int
) -> None:
    names = Names("Widths", ("ada", "bo"), "team", "w", "cy", "t2", "w2")
    world = build_world(create_organisation("Widths"), names, fake_provider, b_only=False)
    arguments = BASE_ARGUMENTS[action](world)
    arguments[field] = "x" * width
    assert act(world.organisation_id, action, arguments)
    arguments[field] = "x" * (width + 1)
    with pytest.raises(ActionArgumentsError) as caught:
        run_action(action, arguments, organisation_id=world.organisation_id)
    assert [error["field"] for error in caught.value.errors] == [field]

"""Fuzzing the producer API and the task entry points with arbitrary JSON-like values.

Every bad input is answered by a ``TriggerError`` / ``ActionArgumentsError`` / ``UnknownActionError``
whose errors name fields, or by an ``Err``; never by another exception type, and never by a
hang or a retry loop. Text includes NUL characters and lone surrogates (valid in JSON, refused
by PostgreSQL), numbers include NaN and infinities.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dispatcher import (
    ActionArgumentsError,
    Err,
    Ok,
    TriggerError,
    TriggerReceipt,
    UnknownActionError,
    enqueue_action,
    run_action,
    trigger,
    trigger_bulk,
)
from dispatcher.actions import catalogue
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.organisations import create_organisation
from dispatcher.results import ErrorCode
from dispatcher.tasks import action_task
from dispatcher.tasks.deliveries import deliver
from tests.security.support import BASE_ARGUMENTS, Names, World, build_world, open_deliveries

pytestmark = pytest.mark.usefixtures("postgres_url", "redis_url")

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

text = st.text(st.characters(exclude_categories=()), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | text
    | st.sampled_from(["", " ", "ada", "fuzz", "a\x00b", "\ud800", "x" * 300])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=10,
)
#: The fuzz organisation, with a row of every kind (set by its fixture).
WORLD: list[World] = []


def plausible() -> st.SearchStrategy[Any]:
    # Deferred: the organisation's ids exist only once its fixture ran.
    return st.deferred(lambda: st.sampled_from(
        [
            "ada", "fuzz", "team", "sms", "email", "user", "read", "Completed", "@daily",
            "fake_http", "tool", "system_agent", True, 0, 1, [], {}, {"topic": "team"},
            {"subscriber_id": "new"},
        ]
        + [str(value) for value in WORLD[0].ids.values()]
    ))  # fmt: skip


#: Endings that keep text valid JSON but test what the database and the limits take.
TAILS = st.sampled_from(["\x00", "\ud800", " ", "é" * 60, "x" * 60, "x" * 250, "🙂" * 40])
#: True nine times in ten.
MOSTLY = st.sampled_from([True] * 9 + [False])
#: Valid JSON that PostgreSQL cannot store as it is.
poison = st.sampled_from(
    ["a\x00b", "\ud800", float("nan"), float("inf"), {"k": "\x00"}, ["\udfff"]]
)


def field_values() -> st.SearchStrategy[Any]:
    return st.one_of(plausible(), poison, json_values, st.lists(plausible(), max_size=3))


@st.composite
def action_arguments(draw: st.DrawFn, name: str) -> Any:
    """Arbitrary JSON, or the action's valid arguments with a few fields changed: dropped,
    replaced by arbitrary values, or (text) given an awkward tail, so that most calls get past
    validation to the handler and the database."""
    if name not in BASE_ARGUMENTS or not draw(MOSTLY):
        return draw(json_values)
    arguments = BASE_ARGUMENTS[name](WORLD[0])
    fields = [*catalogue.get(name).args_model.model_fields, "as", "unknown"]
    for key in draw(st.lists(st.sampled_from(fields) | text, min_size=1, max_size=3, unique=True)):
        change = draw(st.sampled_from(["tail", "tail", "replace", "drop"]))
        current = arguments.get(key)
        if change == "tail" and isinstance(current, str):
            arguments[key] = current + draw(TAILS)
        elif change == "tail" and key == "meta":
            arguments[key] = {"note": draw(TAILS), "n": draw(poison)}
        elif change == "drop":
            arguments.pop(key, None)
        else:
            arguments[key] = draw(field_values())
    return arguments


def assert_names_fields(errors: Any) -> None:
    assert isinstance(errors, list), errors
    assert errors, "an error without a field"
    for item in errors:
        assert isinstance(item["field"], str), item
        assert item["field"], item
        assert isinstance(item["message"], str), item


def assert_clean_err(result: Err) -> None:
    """An ``Err`` for bad input: a known code, and the fields named when arguments were bad."""
    assert result.code in {
        ErrorCode.INVALID_ARGS, ErrorCode.NOT_FOUND, ErrorCode.CONFLICT, ErrorCode.FORBIDDEN,
        ErrorCode.UNKNOWN_ACTION,
    }, result  # fmt: skip
    if result.code == ErrorCode.INVALID_ARGS:
        if "errors" in result.details:
            assert_names_fields(result.details["errors"])
        else:
            assert result.details.get("field") or result.message.startswith("arguments:"), result


@pytest.fixture(scope="module")
def fuzz_org(postgres_url: str, fake_provider: FakeProviderServer) -> uuid.UUID:
    names = Names("Fuzz", ("ada", "bo"), "team", "fuzz", "cy", "b-topic", "b-flow")
    world = build_world(create_organisation("Fuzz"), names, fake_provider, b_only=False)
    WORLD[:] = [world]
    return world.organisation_id


@FUZZ
@given(
    workflow=st.one_of(st.just("fuzz"), json_values),
    to=st.one_of(st.just("ada"), field_values()),
    payload=st.one_of(st.none(), st.dictionaries(text, json_values, max_size=3), json_values),
    transaction_id=st.one_of(st.none(), json_values),
    overrides=st.one_of(st.none(), json_values, st.just({"email": {"subject": "\x00"}})),
    actor=st.one_of(st.none(), json_values),
)
def test_trigger_answers_any_input_with_a_receipt_or_field_errors(
    fuzz_org: uuid.UUID, workflow: Any, to: Any, payload: Any, transaction_id: Any,
    overrides: Any, actor: Any,
) -> None:  # fmt: skip
    try:
        receipt = trigger(fuzz_org, workflow, to, payload, transaction_id=transaction_id,
                          overrides=overrides, actor=actor)  # fmt: skip
    except TriggerError as exc:
        assert_names_fields(exc.errors)
    else:
        assert isinstance(receipt, TriggerReceipt)


@FUZZ
@given(
    organisation_id=st.one_of(st.just("org"), json_values, st.uuids().map(str)),
    events=st.one_of(
        json_values,
        st.lists(
            st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {"workflow": st.one_of(st.just("fuzz"), json_values)},
                    optional={
                        "to": field_values(),
                        "payload": json_values,
                        "transaction_id": json_values,
                        "extra": json_values,
                    },
                ),
            ),
            max_size=3,
        ),
    ),
)
def test_trigger_bulk_answers_any_input_with_receipts_or_field_errors(
    fuzz_org: uuid.UUID, organisation_id: Any, events: Any
) -> None:
    target = fuzz_org if organisation_id == "org" else organisation_id
    try:
        receipts = trigger_bulk(target, events)
    except TriggerError as exc:
        assert_names_fields(exc.errors)
    else:
        assert all(isinstance(receipt, TriggerReceipt) for receipt in receipts)


@st.composite
def action_calls(draw: st.DrawFn) -> tuple[Any, Any, Any]:
    # Mostly real actions of the fuzz organisation, so that fuzzing gets past the first check.
    real = draw(MOSTLY)
    name = draw(st.sampled_from(catalogue.names()) if real else json_values)
    arguments = draw(action_arguments(name if isinstance(name, str) else ""))
    organisation = "org" if draw(MOSTLY) else draw(json_values | st.uuids())
    return name, arguments, organisation


@settings(FUZZ, max_examples=300)
@given(call=action_calls())
def test_run_action_answers_any_input_with_a_result_or_field_errors(
    fuzz_org: uuid.UUID, call: tuple[Any, Any, Any]
) -> None:
    name, arguments, organisation = call
    try:
        result = run_action(
            name, arguments, organisation_id=fuzz_org if organisation == "org" else organisation
        )
    except ActionArgumentsError as exc:
        assert_names_fields(exc.errors)
    except UnknownActionError:
        assert name not in catalogue.names()
    else:
        assert isinstance(result, Ok | Err)
        if isinstance(result, Err):
            assert_clean_err(result)


@settings(FUZZ, max_examples=40)
@given(call=action_calls())
def test_enqueue_action_refuses_bad_input_in_the_producer(
    fuzz_org: uuid.UUID, call: tuple[Any, Any, Any]
) -> None:
    name, arguments, organisation = call
    try:
        enqueue_action(
            name, arguments, organisation_id=fuzz_org if organisation == "org" else organisation
        )
    except ActionArgumentsError as exc:
        assert_names_fields(exc.errors)
    except UnknownActionError:
        assert name not in catalogue.names()


@FUZZ
@given(call=action_calls())
def test_action_tasks_answer_any_message_with_a_result_value(
    fuzz_org: uuid.UUID, call: tuple[Any, Any, Any]
) -> None:
    name, arguments, organisation = call
    task = action_task(name if name in catalogue.names() else "create_user")
    outcome = task.apply(
        kwargs={
            "organisation_id": str(fuzz_org) if organisation == "org" else organisation,
            "arguments": arguments,
        }
    )
    assert outcome.successful(), outcome.traceback
    answer = outcome.get()
    assert answer["ok"] in (True, False), answer
    if answer["ok"] is False:
        assert_clean_err(Err(answer["code"], answer["message"], answer["details"]))


@FUZZ
@given(
    delivery_ids=st.one_of(
        json_values,
        st.lists(st.one_of(json_values, st.uuids(), st.just("delivery")), max_size=5),
    )
)
def test_the_deliver_task_answers_any_message_and_returns(
    fuzz_org: uuid.UUID, delivery_ids: Any
) -> None:
    if isinstance(delivery_ids, list):
        parked_ids = open_deliveries(fuzz_org)
        delivery_ids = [parked_ids[0] if item == "delivery" else item for item in delivery_ids]
    outcome = deliver.apply(kwargs={"delivery_ids": delivery_ids})
    assert outcome.successful(), outcome.traceback
    answer = outcome.get()
    assert isinstance(answer, dict)
    if isinstance(delivery_ids, list):
        assert "error" not in answer, answer
    else:
        assert answer == {"error": "delivery_ids must be a list"}
    direct = deliver.run(delivery_ids=delivery_ids)
    assert isinstance(direct, dict)

"""The action argument models on their own (no database): text kept as sent, names trimmed,
camelCase aliases with errors in the caller's spelling, and ``meta`` bounded like a payload."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic.alias_generators import to_camel, to_snake

from dispatcher import ActionArgumentsError
from dispatcher.actions import catalogue
from dispatcher.actions.base import argument_errors
from dispatcher.actions.runner import prepare
from dispatcher.actions.sealing import SEALED_MARKER, seal
from dispatcher.config import get_settings
from dispatcher.producer import validate_action
from dispatcher.results import Err, ErrorCode
from dispatcher.runtime.resources import ensure_ready
from dispatcher.validation import MAX_META_DEPTH, MAX_META_KEYS, json_size

ORG = uuid.uuid4()
ID = str(uuid.uuid4())
CODE = "    def f():\n        return 1\n\n"


def validated(action: str, arguments: dict[str, Any]) -> Any:
    return catalogue.get(action).args_model.model_validate(arguments)


def errors(action: str, arguments: dict[str, Any]) -> dict[str, str]:
    """``{field: error type}`` of a call that must fail, as the producer reports them."""
    with pytest.raises(ActionArgumentsError) as caught:
        validate_action(action, arguments, ORG)
    return {item["field"]: item["type"] for item in caught.value.errors}


# --- text is stored as sent; names and keys are trimmed ---------------------------------------

FREE_TEXT = [
    ("create_agent", {"name": "a", "kind": "user_agent", "description": CODE}, "description"),
    ("create_agent", {"name": "a", "kind": "user_agent", "description": "d", "prompt": CODE},
     "prompt"),
    ("send_agent_message", {"thread_id": ID, "kind": "user", "content": CODE}, "content"),
    ("create_prompt", {"name": "p", "content": CODE}, "content"),
    ("create_tool", {"name": "t", "description": CODE}, "description"),
    ("create_flow", {"name": "f", "description": CODE}, "description"),
    ("update_flow_progress", {"flow_id": ID, "step_name": "s", "status": "Completed",
                              "notes": CODE}, "notes"),
    ("create_group", {"name": "g", "description": CODE}, "description"),
    ("invoke_tool", {"tool_id": ID, "invoked_by_user": ID, "to": ["ada"], "body": CODE}, "body"),
]  # fmt: skip


@pytest.mark.parametrize(("action", "arguments", "field"), FREE_TEXT)
def test_free_text_keeps_its_whitespace(action: str, arguments: dict[str, Any], field: str) -> None:
    assert getattr(validated(action, arguments), field) == CODE
    assert validate_action(action, arguments, ORG)[1][field] == CODE


def test_names_and_keys_are_trimmed() -> None:
    agent = validated("create_agent", {"name": "  Tutor \n", "kind": "user_agent",
                                       "description": " d ", "tags": [" x "]})  # fmt: skip
    assert (agent.name, agent.tags, agent.description) == ("Tutor", ["x"], " d ")
    topic = validated("create_topic", {"key": " team ", "name": "\tTeam "})
    assert (topic.key, topic.name) == ("team", "Team")
    assert validated("add_group_member", {"group_id": ID, "user_id": ID,
                                          "role": " admin "}).role == "admin"  # fmt: skip
    # Trimmed before the length check: a name of blanks is empty.
    assert errors("create_topic", {"key": "team", "name": "   "}) == {"name": "string_too_short"}


# --- camelCase aliases ---------------------------------------------------------------------------

#: The ONE actions as the system's TypeScript producers write them.
SEED_CALLS = {
    "create_agent": {"name": "Tutor", "description": "d", "kind": "system_agent",
                     "createdBy": ID, "avatarUrl": "https://example.com/a.png",
                     "delegatesTo": [ID], "attachedPrompts": [ID]},
    "assign_lesson": {"flowId": ID, "courseId": ID, "stepName": "intro", "userId": ID,
                      "agentId": ID, "assignedBy": ID},
    "send_agent_message": {"threadId": ID, "authorId": ID, "kind": "agent", "content": "hi",
                           "toolCall": {"name": "search"}},
    "update_flow_progress": {"flowId": ID, "stepName": "intro", "userId": ID, "agentId": ID,
                             "status": "In Progress"},
}  # fmt: skip


def snake(arguments: dict[str, Any]) -> dict[str, Any]:
    return {to_snake(key): value for key, value in arguments.items()}


@pytest.mark.parametrize("action", sorted(SEED_CALLS))
def test_the_seeds_camel_case_arguments_are_accepted(action: str) -> None:
    camel = SEED_CALLS[action]
    assert validated(action, camel).model_dump() == validated(action, snake(camel)).model_dump()
    # The producer hands the worker the arguments under the caller's names.
    assert set(validate_action(action, camel, ORG)[1]) == set(camel)


@pytest.mark.parametrize("spec", list(catalogue), ids=lambda spec: spec.name)
def test_every_argument_of_every_action_takes_both_spellings(spec: Any) -> None:
    for field in spec.args_model.model_fields:
        for spelling in {field, to_camel(field)}:
            try:
                spec.args_model.model_validate({spelling: {"not": ["a", "valid", "value"]}})
            except ValidationError as exc:
                refused = {item["field"]: item["type"] for item in argument_errors(exc)}
                assert refused.get(spelling) != "extra_forbidden", (spec.name, spelling)


def test_a_bad_field_is_named_as_the_caller_spelled_it() -> None:
    assert errors("create_agent", {**SEED_CALLS["create_agent"], "createdBy": "nobody"}) == {
        "createdBy": "uuid_parsing"
    }
    snake_call = snake(SEED_CALLS["create_agent"])
    assert errors("create_agent", {**snake_call, "created_by": "nobody"}) == {
        "created_by": "uuid_parsing"
    }
    # Field by field in one call.
    mixed = {**snake_call, "avatarUrl": "ftp://x", "delegates_to": ["x"]}
    del mixed["avatar_url"]
    assert errors("create_agent", mixed) == {
        "avatarUrl": "string_pattern_mismatch",
        "delegates_to.0": "uuid_parsing",
    }


def test_a_missing_field_is_named_in_the_callers_convention() -> None:
    assert errors("send_agent_message", {"authorId": ID, "kind": "user", "content": "x"}) == {
        "threadId": "missing"
    }
    assert errors("send_agent_message", {"author_id": ID, "kind": "user", "content": "x"}) == {
        "thread_id": "missing"
    }
    assert errors("send_agent_message", {"kind": "user", "content": "x"}) == {
        "thread_id": "missing"
    }


def test_one_field_under_both_spellings_is_refused() -> None:
    call = {**snake(SEED_CALLS["create_agent"]), "createdBy": ID}
    assert errors("create_agent", call) == {"created_by": "extra_forbidden"}


def test_the_worker_names_fields_as_the_caller_spelled_them() -> None:
    """What a producer that skips the Python client sends straight onto the queue."""
    for spelling in ("threadId", "thread_id"):
        arguments = {spelling: "x", "kind": "user", "content": "x"}
        result = prepare("send_agent_message", arguments, str(ORG))
        assert isinstance(result, Err)
        assert result.code is ErrorCode.INVALID_ARGS
        assert [item["field"] for item in result.details["errors"]] == [spelling]


def test_integration_arguments_in_camel_case_are_sealed_and_opened() -> None:
    ensure_ready()
    credentials = {"api_key": "SECRET-fake-key-123"}
    call = {"name": "Mail", "provider": "fake", "channelType": "email", "isPrimary": True,
            "createdBy": ID, "credentials": credentials}  # fmt: skip
    _, payload = validate_action("create_integration", call, ORG)
    spec = catalogue.get("create_integration")
    sealed = seal(spec, payload)
    assert set(sealed["credentials"]) == {SEALED_MARKER}
    assert "SECRET" not in str(sealed)
    prepared = prepare("create_integration", sealed, str(ORG))
    assert not isinstance(prepared, Err), prepared
    args = prepared[1]
    assert (args.channel_type.value, args.is_primary, args.credentials) == (
        "email",
        True,
        credentials,
    )
    assert args.spelled("is_primary") == "isPrimary"


def test_a_channel_the_provider_does_not_serve_is_named_as_sent() -> None:
    call = {"name": "Mail", "provider": "sendgrid", "credentials": {"api_key": "k"}}
    assert errors("create_integration", {**call, "channelType": "sms"}) == {
        "channelType": "value_error"
    }
    assert errors("create_integration", {**call, "channel_type": "sms"}) == {
        "channel_type": "value_error"
    }


def test_on_ambiguous_is_an_integration_setting_beside_the_providers() -> None:
    call = {"name": "Texts", "provider": "twilio", "credentials": {
        "account_sid": "AC" + "0" * 32, "auth_token": "t" * 32}}  # fmt: skip
    settings = {"from_number": "+15005550006", "on_ambiguous": "record_unknown"}
    assert validated("create_integration", {**call, "settings": settings}).settings == settings
    with pytest.raises(ValidationError) as caught:
        validated("create_integration", {**call, "settings": {**settings, "on_ambiguous": "no"}})
    assert "on_ambiguous: Input should be 'resend' or 'record_unknown'" in str(caught.value)
    assert errors("create_integration", {**call, "settings": {"on_ambiguous": "no"}}) == {
        "settings": "value_error"
    }


def test_nested_step_arguments_take_camel_case_names() -> None:
    step = {"kind": "email", "template": {"body": "hi"}, "config": {}}
    workflow = validated("create_workflow", {"key": "w", "name": "W", "steps": [step]})
    assert workflow.steps[0].template == {"body": "hi"}
    assert errors("create_workflow", {"key": "w", "name": "W", "steps": [{**step, "kinds": 1}]}) \
        == {"steps.0.kinds": "extra_forbidden"}  # fmt: skip


# --- meta is bounded like a trigger's payload ---------------------------------------------------


def meta_of_size(size: int) -> dict[str, str]:
    envelope = json_size({"note": ""})
    return {"note": "x" * (size - envelope)}


def test_meta_is_limited_to_the_payload_limit() -> None:
    limit = get_settings().max_payload_bytes
    call = {"name": "tone", "content": "c"}
    at_limit = meta_of_size(limit)
    assert json_size(at_limit) == limit
    assert validated("create_prompt", {**call, "meta": at_limit}).meta == at_limit
    with pytest.raises(ActionArgumentsError) as caught:
        validate_action("create_prompt", {**call, "meta": meta_of_size(limit + 1)}, ORG)
    [error] = caught.value.errors
    assert error["field"] == "meta"
    assert f"meta is {limit + 1} bytes; the limit is {limit}" in error["message"]
    assert "xxxx" not in str(caught.value)  # the input is not echoed
    # The worker checks it too, for producers that skip the Python client.
    result = prepare("create_prompt", {**call, "meta": {"blob": "x" * 10 * 2**20}}, str(ORG))
    assert isinstance(result, Err)
    assert [item["field"] for item in result.details["errors"]] == ["meta"]


def test_meta_keys_and_nesting_are_bounded() -> None:
    call = {"name": "tone", "content": "c"}
    many = {f"k{i}": 1 for i in range(MAX_META_KEYS + 1)}
    assert errors("create_prompt", {**call, "meta": many}) == {"meta": "value_error"}
    assert errors("create_prompt", {**call, "meta": {f"k{i}": 1 for i in range(50_000)}}) == {
        "meta": "value_error"
    }
    assert validated("create_prompt", {**call, "meta": dict(list(many.items())[:-1])})
    deep: Any = 1
    for _ in range(MAX_META_DEPTH):
        deep = {"d": deep}
    assert validated("create_prompt", {**call, "meta": deep}).meta == deep
    assert errors("create_prompt", {**call, "meta": {"d": deep}}) == {"meta": "value_error"}

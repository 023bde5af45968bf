"""Arguments as the ONE system's producers send them, run in-process against PostgreSQL: text is
stored exactly, camelCase names reach the rows, and the worker's errors use the caller's names."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dispatcher import Err, run_action
from dispatcher.results import ErrorCode
from models import Agent, AgentMessage, Integration
from tests.dispatcher.support import created_id, fetch

pytestmark = pytest.mark.usefixtures("postgres_url", "redis_url")

CODE = "    def f():\n        return 1\n\n"


def make(name: str, arguments: dict[str, Any], organisation_id: uuid.UUID) -> uuid.UUID:
    return created_id(run_action(name, arguments, organisation_id=organisation_id))


def test_a_camel_case_call_is_stored_with_its_text_exactly(organisation_id: uuid.UUID) -> None:
    user = make("create_user", {"name": "Ada"}, organisation_id)
    prompt = make("create_prompt", {"name": "tone", "content": CODE}, organisation_id)
    agent = fetch(Agent, make("create_agent", {
        "name": " Tutor ", "description": CODE, "kind": "system_agent", "prompt": CODE,
        "createdBy": str(user), "avatarUrl": "https://example.com/a.png",
        "attachedPrompts": [str(prompt)], "meta": {"source": "seed"},
    }, organisation_id))  # fmt: skip
    assert (agent.name, agent.description, agent.prompt) == ("Tutor", CODE, CODE)
    assert (agent.created_by, agent.avatar_url) == (user, "https://example.com/a.png")
    assert agent.attached_prompts == [str(prompt)]

    thread = make("create_agent_thread", {"agentId": str(agent.id)}, organisation_id)
    message = fetch(AgentMessage, make("send_agent_message", {
        "threadId": str(thread), "authorId": str(user), "kind": "agent", "content": CODE,
        "toolCall": {"name": "search", "arguments": {"q": "  spaced  "}},
    }, organisation_id))  # fmt: skip
    assert (message.thread_id, message.author_id, message.content) == (thread, user, CODE)
    assert message.tool_call == {"name": "search", "arguments": {"q": "  spaced  "}}


@pytest.mark.parametrize("spelling", ["createdBy", "created_by"])
def test_an_unknown_reference_is_named_as_the_caller_spelled_it(
    organisation_id: uuid.UUID, spelling: str
) -> None:
    missing = uuid.uuid4()
    call = {"name": "Tutor", "description": "d", "kind": "user_agent", spelling: str(missing)}
    result = run_action("create_agent", call, organisation_id=organisation_id)
    assert isinstance(result, Err)
    assert result.code is ErrorCode.NOT_FOUND
    assert result.details["field"] == spelling
    assert result.message.startswith(f"{spelling}: no users row with id {missing}")


def test_an_integration_created_in_camel_case(organisation_id: uuid.UUID) -> None:
    call = {"name": "Texts", "provider": "fake", "channelType": "sms", "isPrimary": True,
            "credentials": {"api_key": "SECRET-fake-key-123"}}  # fmt: skip
    row = fetch(Integration, make("create_integration", call, organisation_id))
    assert (row.channel_type.value, row.is_primary) == ("sms", True)
    assert row.credentials == {"api_key": "SECRET-fake-key-123"}

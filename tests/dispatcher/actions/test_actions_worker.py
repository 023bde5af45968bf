"""The ONE actions through a real worker process, against PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatcher import ActionArgumentsError, Err, Ok, enqueue_action, run_action
from dispatcher.results import ErrorCode
from models import (
    Agent,
    AgentKind,
    AgentMessage,
    FlowProgress,
    Lesson,
    MessageKind,
    ProgressStatus,
)
from tests.dispatcher.support import count, created_id, fetch, on_worker, raw_on_worker

pytestmark = pytest.mark.usefixtures("worker")


@dataclass(frozen=True)
class Rows:
    """Rows of one organisation that the four actions refer to (made in-process)."""

    organisation_id: uuid.UUID
    user: uuid.UUID
    prompt: uuid.UUID
    tool: uuid.UUID
    agent: uuid.UUID
    thread: uuid.UUID
    flow: uuid.UUID
    course: uuid.UUID


def make(name: str, arguments: dict[str, Any], organisation_id: uuid.UUID) -> uuid.UUID:
    return created_id(run_action(name, arguments, organisation_id=organisation_id))


def make_rows(organisation_id: uuid.UUID) -> Rows:
    user = make("create_user", {"name": "Ada", "email": "ada@example.com"}, organisation_id)
    prompt = make("create_prompt", {"name": "tone", "content": "Be brief."}, organisation_id)
    tool = make("create_tool", {"name": "search", "action": "webSearch"}, organisation_id)
    agent = make(
        "create_agent",
        {"name": "Helper", "description": "helps", "kind": "user_agent"},
        organisation_id,
    )
    thread = make("create_agent_thread", {"title": "t", "agent_id": str(agent)}, organisation_id)
    flow = make("create_flow", {"name": "Onboarding", "steps": ["intro"]}, organisation_id)
    course = make("create_course", {"name": "Basics", "flow_id": str(flow)}, organisation_id)
    return Rows(organisation_id, user, prompt, tool, agent, thread, flow, course)


@pytest.fixture
def rows(organisation_id: uuid.UUID) -> Rows:
    return make_rows(organisation_id)


@pytest.fixture
def other_rows(postgres_url: str) -> Rows:
    from dispatcher import create_organisation

    return make_rows(create_organisation("Another organisation"))


def recent(moment: datetime) -> bool:
    return datetime.now(UTC) - timedelta(minutes=1) < moment <= datetime.now(UTC)


# --- the four actions, written with their fields --------------------------------------------


def test_create_agent_writes_every_field(rows: Rows) -> None:
    result = on_worker(
        "create_agent",
        {
            "name": "Tutor",
            "description": "Teaches",
            "kind": "system_agent",
            "created_by": str(rows.user),
            "prompt": "You teach.",
            "avatar_url": "https://example.com/a.png",
            "delegates_to": [str(rows.agent)],
            "tools": [str(rows.tool)],
            "tags": ["teaching", "demo"],
            "model": "gpt-5",
            "attached_prompts": [str(rows.prompt)],
            "meta": {"source": "test", "n": 1},
        },
        rows.organisation_id,
    )
    agent = fetch(Agent, created_id(result))
    assert agent.organisation_id == rows.organisation_id
    assert (agent.name, agent.description, agent.kind) == (
        "Tutor",
        "Teaches",
        AgentKind.SYSTEM_AGENT,
    )
    assert agent.created_by == rows.user
    assert agent.prompt == "You teach."
    assert agent.avatar_url == "https://example.com/a.png"
    assert agent.delegates_to == [str(rows.agent)]
    assert agent.tools == [str(rows.tool)]
    assert agent.tags == ["teaching", "demo"]
    assert agent.model == "gpt-5"
    assert agent.attached_prompts == [str(rows.prompt)]
    assert agent.meta == {"source": "test", "n": 1}
    assert recent(agent.created_at)
    assert recent(agent.updated_at)


def test_create_agent_with_only_required_fields(rows: Rows) -> None:
    result = on_worker(
        "create_agent",
        {"name": "Min", "description": "", "kind": "user_agent"},
        rows.organisation_id,
    )
    agent = fetch(Agent, created_id(result))
    assert agent.kind is AgentKind.USER_AGENT
    assert (agent.created_by, agent.prompt, agent.tools, agent.meta) == (None, None, [], {})


def test_assign_lesson_stamps_assigned_at_and_created_at(rows: Rows) -> None:
    result = on_worker(
        "assign_lesson",
        {
            "flow_id": str(rows.flow),
            "course_id": str(rows.course),
            "step_name": "intro",
            "user_id": str(rows.user),
            "agent_id": str(rows.agent),
            "role": "learner",
            "assigned_by": str(rows.user),
            "meta": {"cohort": 7},
        },
        rows.organisation_id,
    )
    lesson = fetch(Lesson, created_id(result))
    assert (lesson.flow_id, lesson.course_id, lesson.step_name) == (rows.flow, rows.course, "intro")
    assert (lesson.user_id, lesson.agent_id, lesson.role) == (rows.user, rows.agent, "learner")
    assert lesson.assigned_by == rows.user
    assert lesson.meta == {"cohort": 7}
    assert recent(lesson.assigned_at)
    assert lesson.created_at == lesson.assigned_at


def test_assign_lesson_takes_no_arguments_at_all(rows: Rows) -> None:
    lesson = fetch(Lesson, created_id(on_worker("assign_lesson", {}, rows.organisation_id)))
    assert (lesson.flow_id, lesson.user_id) == (None, None)


@pytest.mark.parametrize("kind", ["user", "agent", "system"])
def test_send_agent_message_keeps_kind_tool_call_and_result(rows: Rows, kind: str) -> None:
    result = on_worker(
        "send_agent_message",
        {
            "thread_id": str(rows.thread),
            "author_id": str(rows.user),
            "kind": kind,
            "content": "Look this up",
            "tool_call": {"name": "search", "arguments": {"q": "celery"}},
            "result": [1, "two", None],
            "meta": {"trace": "abc"},
        },
        rows.organisation_id,
    )
    message = fetch(AgentMessage, created_id(result))
    assert message.thread_id == rows.thread
    assert message.author_id == rows.user
    assert message.kind is MessageKind(kind)
    assert message.content == "Look this up"
    assert message.tool_call == {"name": "search", "arguments": {"q": "celery"}}
    assert message.result == [1, "two", None]
    assert message.meta == {"trace": "abc"}
    assert recent(message.created_at)


def test_update_flow_progress_creates_then_updates_one_row(rows: Rows) -> None:
    arguments = {
        "flow_id": str(rows.flow),
        "step_name": "intro",
        "user_id": str(rows.user),
        "status": "In Progress",
        "notes": "started",
        "meta": {"a": 1},
    }
    first = fetch(
        FlowProgress, created_id(on_worker("update_flow_progress", arguments, rows.organisation_id))
    )
    assert first.status is ProgressStatus.IN_PROGRESS
    assert first.notes == "started"
    arguments.update(status="Completed", notes="done", meta={"b": 2})
    second_id = created_id(on_worker("update_flow_progress", arguments, rows.organisation_id))
    second = fetch(FlowProgress, second_id)
    assert second_id == first.id
    assert second.status is ProgressStatus.COMPLETED
    assert second.notes == "done"
    assert second.meta == {"a": 1, "b": 2}
    assert second.updated_at > first.updated_at
    assert count(FlowProgress, flow_id=rows.flow) == 1


@pytest.mark.parametrize(
    "status", ["Not Started", "In Progress", "Completed", "Blocked", "Skipped"]
)
def test_update_flow_progress_accepts_every_status(rows: Rows, status: str) -> None:
    result = on_worker(
        "update_flow_progress",
        {
            "flow_id": str(rows.flow),
            "step_name": "s",
            "agent_id": str(rows.agent),
            "status": status,
        },
        rows.organisation_id,
    )
    assert fetch(FlowProgress, created_id(result)).status.value == status


# --- invalid input: an Err from the worker, an error in the producer -------------------------


def invalid_cases(rows: Rows, other: Rows) -> list[tuple[str, str, dict[str, Any], str, str]]:
    """(case, action, arguments, expected error code, field the error names)."""
    return [
        ("wrong literal", "create_agent", {"name": "A", "description": "", "kind": "robot"}, ErrorCode.INVALID_ARGS, "kind"),
        ("missing required", "create_agent", {"name": "A", "kind": "user_agent"}, ErrorCode.INVALID_ARGS, "description"),
        ("unknown field", "assign_lesson", {"lesson": "x"}, ErrorCode.INVALID_ARGS, "lesson"),
        ("not a uuid", "assign_lesson", {"user_id": "42"}, ErrorCode.INVALID_ARGS, "user_id"),
        ("wrong status", "update_flow_progress", {"flow_id": str(rows.flow), "step_name": "s", "status": "Done"}, ErrorCode.INVALID_ARGS, "status"),
        ("wrong message kind", "send_agent_message", {"thread_id": str(rows.thread), "kind": "bot", "content": "x"}, ErrorCode.INVALID_ARGS, "kind"),
        ("id of another table", "send_agent_message", {"thread_id": str(rows.agent), "kind": "user", "content": "x"}, ErrorCode.NOT_FOUND, "thread_id"),
        ("id of another table in a list", "create_agent", {"name": "A", "description": "", "kind": "user_agent", "tools": [str(rows.tool), str(rows.prompt)]}, ErrorCode.NOT_FOUND, "tools"),
        ("id of another organisation", "assign_lesson", {"flow_id": str(other.flow)}, ErrorCode.NOT_FOUND, "flow_id"),
        ("delegate of another organisation", "create_agent", {"name": "A", "description": "", "kind": "user_agent", "delegates_to": [str(other.agent)]}, ErrorCode.NOT_FOUND, "delegates_to"),
        ("author of another organisation", "send_agent_message", {"thread_id": str(rows.thread), "author_id": str(other.user), "kind": "user", "content": "x"}, ErrorCode.NOT_FOUND, "author_id"),
        ("progress of another organisation's flow", "update_flow_progress", {"flow_id": str(other.flow), "step_name": "s", "status": "Blocked"}, ErrorCode.NOT_FOUND, "flow_id"),
    ]  # fmt: skip


def test_invalid_input_at_the_worker_is_a_field_named_err(rows: Rows, other_rows: Rows) -> None:
    before = count(Agent, organisation_id=rows.organisation_id)
    for case, action, arguments, code, field in invalid_cases(rows, other_rows):
        result = raw_on_worker(action, rows.organisation_id, arguments)
        assert isinstance(result, Err), case
        assert result.code == code, case
        assert field in result.message, (case, result.message)
    assert count(Agent, organisation_id=rows.organisation_id) == before
    assert count(Lesson, organisation_id=rows.organisation_id) == 0


def test_invalid_shapes_in_the_producer_raise_at_once(rows: Rows, other_rows: Rows) -> None:
    for case, action, arguments, code, field in invalid_cases(rows, other_rows):
        if code != ErrorCode.INVALID_ARGS:
            continue  # existence is checked where the database is: the worker
        with pytest.raises(ActionArgumentsError) as caught:
            enqueue_action(action, arguments, organisation_id=rows.organisation_id)
        assert field in {error["field"].split(".")[0] for error in caught.value.errors}, case


def test_unknown_organisation_and_action_and_body_shapes_are_errs(rows: Rows) -> None:
    missing = raw_on_worker("assign_lesson", uuid.uuid4(), {})
    assert isinstance(missing, Err) and missing.code == ErrorCode.NOT_FOUND
    assert "organisation_id" in missing.message
    not_uuid = raw_on_worker("assign_lesson", "acme", {})
    assert isinstance(not_uuid, Err) and "organisation_id" in not_uuid.message
    not_object = raw_on_worker("assign_lesson", rows.organisation_id, ["not", "a", "dict"])
    assert isinstance(not_object, Err) and not_object.code == ErrorCode.INVALID_ARGS


def test_a_redelivered_task_answers_its_first_result_and_writes_once(rows: Rows) -> None:
    task_id = str(uuid.uuid4())
    arguments = {"thread_id": str(rows.thread), "kind": "user", "content": "once"}
    first = raw_on_worker("send_agent_message", rows.organisation_id, arguments, task_id=task_id)
    second = raw_on_worker("send_agent_message", rows.organisation_id, arguments, task_id=task_id)
    assert isinstance(first, Ok)
    assert second == first
    assert count(AgentMessage, thread_id=rows.thread) == 1


def test_enqueue_and_run_in_process_agree(rows: Rows) -> None:
    arguments = {"name": "Same", "description": "d", "kind": "user_agent", "tags": ["x"]}
    queued = fetch(Agent, created_id(on_worker("create_agent", arguments, rows.organisation_id)))
    local = fetch(
        Agent,
        created_id(run_action("create_agent", arguments, organisation_id=rows.organisation_id)),
    )
    assert (queued.name, queued.tags, queued.kind) == (local.name, local.tags, local.kind)

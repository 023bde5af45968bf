"""``/v1/actions`` (ours, not Novu's): the action catalogue over HTTP.

``POST /v1/actions/{name}`` validates the arguments (snake_case or camelCase) here, enqueues the
action for a worker (:func:`dispatcher.producer.enqueue_action`, sealed fields travel sealed)
and answers 202 with the task id; ``?wait=SECONDS`` waits up to that long and answers 200 with
the result when it came in time. ``GET /v1/actions/{taskId}`` reads the result from Celery's
result backend: ``pending`` until a worker wrote it (the backend cannot tell an id it never saw
from a task not done yet, so an unknown id of the caller's own form is ``pending`` too).
``GET /v1/actions`` lists the catalogue with each action's JSON schema.

An action acts on the organisation of the key: the organisation id is never read from the body
(an ``organisation_id`` argument is refused as unknown, as any). A task id starts with the
organisation's id, so another organisation's task id answers 404 exactly like a missing one.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Annotated, Any, Literal

from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse

from dispatcher.actions import catalogue
from dispatcher.api.errors import NotFoundError, UnprocessableError, wire_field
from dispatcher.api.rate_limit import CallerDep
from dispatcher.api.routing import NOT_FOUND, resource_router
from dispatcher.api.schemas import Envelope, WireModel, envelope
from dispatcher.celery_app import app
from dispatcher.errors import ActionArgumentsError, ActionTimeoutError, UnknownActionError
from dispatcher.producer import enqueue_action
from dispatcher.results import from_wire, to_wire
from models.ids import new_id

router: APIRouter = resource_router(prefix="/v1/actions", tag="Actions")

#: Seconds a caller may ask to wait for a result.
MAX_WAIT = 30.0

Wait = Annotated[float, Query(ge=0, le=MAX_WAIT, description="Seconds to wait for the result")]


class ActionDescription(WireModel):
    name: str
    description: str
    #: The arguments' JSON schema (field names in snake_case; camelCase is accepted too).
    arguments: dict[str, Any]


class TaskAnswer(WireModel):
    task_id: str
    action: str | None = None
    status: Literal["pending", "done"]
    #: ``{ok: true, value}`` or ``{ok: false, code, message, details}`` once done.
    result: dict[str, Any] | None = None


@router.get("", response_model=Envelope[list[ActionDescription]])
def list_actions(caller: CallerDep) -> dict[str, Any]:
    """Every action with its description and argument schema."""
    return envelope(
        [
            ActionDescription(
                name=spec.name,
                description=spec.description,
                arguments=spec.args_model.model_json_schema(by_alias=False),
            )
            for spec in catalogue
        ]
    )


def _task_id(organisation_id: uuid.UUID) -> str:
    return f"{organisation_id}.{new_id()}"


def _owns(organisation_id: uuid.UUID, task_id: str) -> bool:
    return task_id.partition(".")[0] == str(organisation_id)


def _done(task_id: str, action: str | None, raw: Any) -> TaskAnswer:
    return TaskAnswer(task_id=task_id, action=action, status="done", result=to_wire(from_wire(raw)))


def _answer(answer: TaskAnswer) -> JSONResponse:
    status = 200 if answer.status == "done" else 202
    return JSONResponse(envelope(answer), status_code=status)


@router.post(
    "/{name}",
    status_code=202,
    response_model=Envelope[TaskAnswer],
    responses={
        **NOT_FOUND,
        200: {"model": Envelope[TaskAnswer], "description": "Done within `wait`"},
    },
)
def run_action(
    name: Annotated[str, Path()],
    caller: CallerDep,
    arguments: Annotated[dict[str, Any], Body(default_factory=dict)],
    wait: Wait = 0,
) -> JSONResponse:
    """Enqueue an action for the caller's organisation: 202 with the task id, or 200 with the
    result when it arrived within ``wait`` seconds."""
    try:
        handle = enqueue_action(
            name,
            arguments,
            organisation_id=caller.organisation_id,
            task_id=_task_id(caller.organisation_id),
        )
    except UnknownActionError:
        raise NotFoundError(f"unknown action {name[:200]!r}") from None
    except ActionArgumentsError as exc:
        raise UnprocessableError(
            {wire_field(str(item["field"])): [str(item["message"])] for item in exc.errors}
        ) from None
    if wait > 0:
        try:
            result = handle.get(wait)
        except ActionTimeoutError:
            pass
        else:
            return _answer(TaskAnswer(task_id=handle.id, action=name, status="done",
                                      result=to_wire(result)))  # fmt: skip
    return _answer(TaskAnswer(task_id=handle.id, action=name, status="pending"))


@router.get(
    "/{taskId}",
    response_model=Envelope[TaskAnswer],
    responses={**NOT_FOUND, 202: {"model": Envelope[TaskAnswer], "description": "Not done yet"}},
)
def get_result(
    task_id: Annotated[str, Path(alias="taskId")], caller: CallerDep, wait: Wait = 0
) -> JSONResponse:
    """An action's result: 200 when done, 202 while pending (waits up to ``wait`` seconds)."""
    if not _owns(caller.organisation_id, task_id):
        raise NotFoundError("task not found")
    async_result: AsyncResult[Any] = AsyncResult(task_id, app=app)
    if wait > 0 and not async_result.ready():
        with contextlib.suppress(CeleryTimeoutError):
            async_result.get(timeout=wait, propagate=False, interval=0.05)
    if not async_result.ready():
        return _answer(TaskAnswer(task_id=task_id, status="pending"))
    if async_result.failed():
        failure = {"ok": False, "code": "internal", "message": "the task failed without a result"}
        return _answer(TaskAnswer(task_id=task_id, status="done", result=failure))
    return _answer(_done(task_id, None, async_result.result))

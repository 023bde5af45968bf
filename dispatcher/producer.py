"""The producer API: validate in the caller's process, then enqueue or run in-process."""

from __future__ import annotations

import uuid
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from pydantic import BaseModel, ValidationError

from dispatcher.actions import catalogue
from dispatcher.actions.base import argument_errors
from dispatcher.actions.runner import execute
from dispatcher.actions.sealing import seal
from dispatcher.celery_app import app
from dispatcher.config import get_settings
from dispatcher.errors import ActionArgumentsError, ActionTimeoutError
from dispatcher.results import Err, ErrorCode, Result, from_wire
from dispatcher.runtime.resources import database, ensure_ready
from dispatcher.tasks import action_task


class ActionHandle:
    """An enqueued action; :meth:`get` waits for its result value."""

    def __init__(self, action: str, task_id: str) -> None:
        self.action = action
        self.id = task_id

    def get(self, timeout: float | None = None) -> Result:
        wait = get_settings().result_timeout if timeout is None else timeout
        async_result: AsyncResult[Any] = AsyncResult(self.id, app=app)
        try:
            raw = async_result.get(timeout=wait, propagate=False, interval=0.05)
        except CeleryTimeoutError:
            raise ActionTimeoutError(self.action, self.id, wait) from None
        if async_result.failed():
            return Err(ErrorCode.INTERNAL, "the task failed without a result value")
        return from_wire(raw)

    def __repr__(self) -> str:
        return f"ActionHandle(action={self.action!r}, id={self.id!r})"


def validate_action(
    name: str, arguments: dict[str, Any] | BaseModel, organisation_id: uuid.UUID | str
) -> tuple[uuid.UUID, dict[str, Any]]:
    """Check a call in the producer: unknown names and bad fields raise at once."""
    spec = catalogue.get(name)
    try:
        organisation = uuid.UUID(str(organisation_id))
    except ValueError:
        raise ActionArgumentsError(
            name, [{"field": "organisation_id", "message": "not a UUID", "type": "uuid_parsing"}]
        ) from None
    raw = arguments.model_dump(mode="json") if isinstance(arguments, BaseModel) else arguments
    try:
        validated = spec.args_model.model_validate(raw)
    except ValidationError as exc:
        raise ActionArgumentsError(name, argument_errors(exc)) from None
    # Under the caller's spelling, so that what the worker reports names fields as they were sent.
    return organisation, validated.as_sent()


def enqueue_action(
    name: str,
    arguments: dict[str, Any] | BaseModel,
    *,
    organisation_id: uuid.UUID | str,
    countdown: float | None = None,
    task_id: str | None = None,
) -> ActionHandle:
    """Validate and enqueue an action on the actions queue; returns a handle to its result.
    ``task_id`` names the task (and its result) instead of a random id."""
    organisation, payload = validate_action(name, arguments, organisation_id)
    ensure_ready()
    sealed = seal(catalogue.get(name), payload)
    options: dict[str, Any] = {} if countdown is None else {"countdown": countdown}
    if task_id is not None:
        options["task_id"] = task_id
    async_result = action_task(name).apply_async(
        kwargs={"organisation_id": str(organisation), "arguments": sealed}, **options
    )
    return ActionHandle(name, async_result.id)


def run_action(
    name: str,
    arguments: dict[str, Any] | BaseModel,
    *,
    organisation_id: uuid.UUID | str,
) -> Result:
    """Validate and run an action in this process (scripts, tests, the CLI's ``--local``)."""
    organisation, payload = validate_action(name, arguments, organisation_id)
    ensure_ready()
    with database().session() as session:
        return execute(name, payload, organisation, session)

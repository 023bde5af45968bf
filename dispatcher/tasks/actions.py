"""One named Celery task per action (``action.create_agent``, ...), so Flower lists them by name.

The task body never lets an exception escape as a traceback: every outcome is returned as a
result value (``{"ok": ...}``). A lost database connection is retried by Celery with exponential
backoff (:mod:`dispatcher.tasks.retrying`) and, once the retries are spent, answered with an
``unavailable`` Err.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Task

from dispatcher.actions import catalogue
from dispatcher.actions.runner import execute, run_id_for
from dispatcher.celery_app import ACTION_TASK_PREFIX, app
from dispatcher.observability.logging import log_context
from dispatcher.results import Err, ErrorCode, to_wire
from dispatcher.runtime.db import DATABASE_UNAVAILABLE
from dispatcher.runtime.resources import database
from dispatcher.tasks.retrying import DATABASE_RETRY, DatabaseUnavailableError, retries_spent

logger = logging.getLogger(__name__)


def action_task_name(action: str) -> str:
    return f"{ACTION_TASK_PREFIX}{action}"


def _run(task: Task[Any, Any], action: str, organisation_id: Any, arguments: Any) -> dict[str, Any]:
    # Every log line of the action names its organisation (the id as given, cut to a UUID's size).
    with log_context(organisation_id=str(organisation_id)[:36]):
        return _run_logged(task, action, organisation_id, arguments)


def _run_logged(
    task: Task[Any, Any], action: str, organisation_id: Any, arguments: Any
) -> dict[str, Any]:
    task_id = task.request.id
    try:
        with database().session() as session:
            result = execute(
                action,
                arguments,
                organisation_id,
                session,
                run_id=run_id_for(task_id) if task_id else None,
            )
    except DATABASE_UNAVAILABLE as exc:
        retries = task.request.retries
        if retries_spent(task):
            logger.error("action %s: database unavailable after %d retries", action, retries)
            return to_wire(
                Err(ErrorCode.UNAVAILABLE, f"database unavailable after {retries} retries")
            )
        logger.warning("action %s: database unavailable (%s), retrying", action, type(exc).__name__)
        raise DatabaseUnavailableError(type(exc).__name__) from None
    except Exception as exc:
        # A defect, not bad input: log it for the operator and answer an Err, never a traceback.
        logger.exception("action %s failed unexpectedly", action)
        return to_wire(Err(ErrorCode.INTERNAL, f"unexpected error ({type(exc).__name__})"))
    return to_wire(result)


def _task_body(action: str) -> Callable[..., dict[str, Any]]:
    def run_action_task(
        self: Task[Any, Any], organisation_id: Any = None, arguments: Any = None
    ) -> dict[str, Any]:
        return _run(self, action, organisation_id, arguments)

    run_action_task.__name__ = f"run_{action}"
    run_action_task.__doc__ = catalogue.get(action).description
    return run_action_task


def _register() -> dict[str, Task[Any, Any]]:
    tasks: dict[str, Task[Any, Any]] = {}
    for spec in catalogue:
        options: dict[str, Any] = {
            "name": action_task_name(spec.name),
            "bind": True,
            "acks_late": True,
            "reject_on_worker_lost": True,
            **DATABASE_RETRY,
        }
        tasks[spec.name] = app.task(**options)(_task_body(spec.name))
    return tasks


_TASKS = _register()


def action_task(action: str) -> Task[Any, Any]:
    """The Celery task of an action (``catalogue.get`` raises for unknown names first)."""
    catalogue.get(action)
    return _TASKS[action]

"""The task-level retry policy: a task whose worker lost its database is retried by Celery's
own ``autoretry_for`` with exponential backoff and full jitter (the schedule sending uses too,
:mod:`dispatcher.sending.backoff`), until ``action_max_retries``; then the task body gives up
and answers instead of raising."""

from __future__ import annotations

from typing import Any

from celery import Task

from dispatcher.config import get_settings


class DatabaseUnavailableError(Exception):
    """Raised to Celery's retry machinery in place of the driver's error: it names the error
    class only (a database error may quote a URL with its password)."""


#: Seconds before the first retry; doubled each time up to the maximum, then jittered.
RETRY_BACKOFF = 1
RETRY_BACKOFF_MAX = 60

#: Task options of every task that retries a lost database connection.
DATABASE_RETRY: dict[str, Any] = {
    "autoretry_for": (DatabaseUnavailableError,),
    "retry_backoff": RETRY_BACKOFF,
    "retry_backoff_max": RETRY_BACKOFF_MAX,
    "retry_jitter": True,
    # The body decides when to give up (retries_spent) and answers; Celery never raises
    # MaxRetriesExceededError in its place.
    "max_retries": None,
}


def retries_spent(task: Task[Any, Any]) -> bool:
    """True once the task has been retried ``action_max_retries`` times."""
    return int(task.request.retries) >= get_settings().action_max_retries

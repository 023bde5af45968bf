"""Errors raised to callers of the dispatcher (producers, CLI, start-up).

::

    DispatcherError
    ├── ConfigurationError        settings missing or malformed; raised at start-up
    │   └── SchemaError           the database has no schema or is not at the latest migration
    ├── UnknownActionError        no action of that name
    ├── ActionArgumentsError      arguments fail validation; ``errors`` names each field
    ├── TriggerError              a trigger was refused; ``errors`` names each field
    └── ActionTimeoutError        no result within the timeout (the action may still run)

Errors of an action that reached a worker are not raised: they come back as ``Err`` results.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class DispatcherError(Exception):
    """Base of every error the dispatcher raises to its callers."""


class ConfigurationError(DispatcherError):
    pass


class SchemaError(ConfigurationError):
    """The database's Alembic revision is not the code's head (none at all: never migrated)."""


class UnknownActionError(DispatcherError, LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown action {name!r}; known actions: {', '.join(known)}")
        self.name = name


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("delegates_to", 1)`` as ``"delegates_to.1"``; the empty location is the whole input."""
    return ".".join(str(part) for part in loc) or "(arguments)"


def field_errors(error: ValidationError) -> list[dict[str, Any]]:
    """``[{"field": "delegates_to.1", "message": "..."}]``, input values left out (secrets)."""
    return [
        {
            "field": field_path(item["loc"]),
            "message": item["msg"],
            "type": item["type"],
        }
        for item in error.errors(include_input=False, include_url=False)
    ]


class ActionArgumentsError(DispatcherError, ValueError):
    def __init__(self, action: str, errors: list[dict[str, Any]]) -> None:
        listed = "; ".join(f"{item['field']}: {item['message']}" for item in errors)
        super().__init__(f"invalid arguments for action {action!r}: {listed}")
        self.action = action
        self.errors = errors


class ActionTimeoutError(DispatcherError, TimeoutError):
    """No result arrived in time; the action may still run (ask again with the same id)."""

    def __init__(self, action: str, task_id: str, timeout: float) -> None:
        super().__init__(
            f"action {action!r} (task {task_id}) gave no result within {timeout:g}s; it may "
            "still run, so calling it again may do it twice: wait for task "
            f"{task_id} instead. Is a worker consuming the actions queue?"
        )
        self.action = action
        self.task_id = task_id


class TriggerError(DispatcherError, ValueError):
    """A trigger refused before anything was written: unknown workflow or subscriber, a payload
    missing what the templates use, or over a limit."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        listed = "; ".join(f"{item['field']}: {item['message']}" for item in errors)
        super().__init__(f"trigger refused: {listed}")
        self.errors = errors

"""Log lines for people (text) or for log pipelines (one JSON object per line).

The identifiers that tie a line to its work (organisation, transaction, delivery, Celery task) come
from the record itself (``logger.info(..., extra={"delivery_id": ...})``) or from the context set
by :func:`log_context`. The context lives in a :mod:`contextvars` variable, so it follows a task
into the coroutines of its event loop and never leaks between concurrent ones.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from json import dumps
from types import MappingProxyType
from typing import TextIO

CONTEXT_FIELDS = ("organisation_id", "transaction_id", "delivery_id", "task_id", "task_name")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("dispatcher_log_context", default=_EMPTY)
_task_tokens: dict[str, list[Token[Mapping[str, str]]]] = {}


def current_context() -> Mapping[str, str]:
    """The identifiers :func:`log_context` set for the running code."""
    return _context.get()


def push_context(**fields: object) -> Token[Mapping[str, str]]:
    """Add identifiers to the context until :func:`pop_context` with the returned token.

    A ``None`` value removes that identifier for the time being.
    """
    unknown = sorted(set(fields) - set(CONTEXT_FIELDS))
    if unknown:
        raise TypeError(f"not a log context field: {', '.join(unknown)}")
    merged = dict(_context.get())
    for name, value in fields.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = str(value)
    return _context.set(MappingProxyType(merged))


def pop_context(token: Token[Mapping[str, str]]) -> None:
    _context.reset(token)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Identifiers (``organisation_id``, ``delivery_id``, ...) on every log line of the block."""
    token = push_context(**fields)
    try:
        yield
    finally:
        pop_context(token)


def bind_task_context(task_id: str, task_name: str | None) -> None:
    """For Celery's ``task_prerun``: the task's id and name on its log lines."""
    token = push_context(task_id=task_id, task_name=task_name)
    _task_tokens.setdefault(task_id, []).append(token)


def unbind_task_context(task_id: str) -> None:
    """For Celery's ``task_postrun``: undo :func:`bind_task_context`."""
    tokens = _task_tokens.get(task_id)
    if not tokens:
        return
    token = tokens.pop()
    if not tokens:
        del _task_tokens[task_id]
    pop_context(token)


def record_fields(record: logging.LogRecord) -> dict[str, str]:
    """The context identifiers of a record; values passed on the record win over the context."""
    fields = dict(_context.get())
    for name in CONTEXT_FIELDS:
        value = record.__dict__.get(name)
        if value is not None:
            fields[name] = str(value)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO-8601 UTC), level, logger, message, identifiers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(record_fields(record))
        # Like logging.Formatter, a rendered exc_text wins: a redacting filter leaves only that.
        if record.exc_text:
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # json escapes newlines, so a traceback or a multi-line message stays on one line.
        return dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Celery's familiar line, followed by the identifiers present as ``name=value``."""

    def __init__(self) -> None:
        super().__init__("[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = record_fields(record)
        if not fields:
            return line
        first, newline, rest = line.partition("\n")
        suffix = " ".join(f"{name}={fields[name]}" for name in CONTEXT_FIELDS if name in fields)
        return f"{first} [{suffix}]{newline}{rest}"


class _DispatcherHandler(logging.StreamHandler[TextIO]):
    """Marks the handler :func:`configure_logging` installed, so a second call replaces it."""


def parse_level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}")
    return number


def configure_logging(json: bool, level: str | int, stream: TextIO | None = None) -> None:
    """Log every logger through the root logger to ``stream`` (stderr by default).

    Handlers that others attached to the root logger stay. Calling this again replaces only the
    handler it installed before, and the new one keeps that handler's filters (log redaction).
    """
    handler = _DispatcherHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, _DispatcherHandler)]:
        for kept in existing.filters:
            handler.addFilter(kept)
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(parse_level(level))

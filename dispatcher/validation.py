"""Field types and value checks shared by action arguments and trigger events (a leaf module)."""

from __future__ import annotations

import datetime
import decimal
import enum
import math
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, StringConstraints

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: Names stored in narrower columns (roles, environments, tool actions).
Name50 = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Name100 = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Key = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
]
LongText = Annotated[str, StringConstraints(max_length=100_000)]
Url = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://")]

#: What pydantic writes as JSON itself; allowed inside free-form action arguments.
PYDANTIC_JSON_TYPES: tuple[type, ...] = (
    uuid.UUID,
    datetime.date,
    datetime.time,
    decimal.Decimal,
    enum.Enum,
)
#: JSON nested deeper than this is refused before it reaches the database or a serializer.
MAX_JSON_DEPTH = 64


def storable_problem(  # noqa: PLR0911, PLR0912 - one branch per kind of value
    value: Any, *, lenient: tuple[type, ...] = ()
) -> str | None:
    """Why ``value`` cannot be stored as text or JSON in PostgreSQL, or ``None`` if it can.

    PostgreSQL refuses NUL characters in text and in JSON, a lone surrogate cannot be encoded as
    UTF-8, and JSON has no NaN or infinity; checked here, such input is an error naming its
    field instead of a driver exception. Pydantic models are checked field by field, types in
    ``lenient`` pass as they are, and anything else that is not JSON is refused.
    """
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return f"contains a NUL character{where}"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return f"is not valid Unicode text (a lone surrogate){where}"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"must be a finite number{where}"
        elif item is None or isinstance(item, (bool, int, *lenient)):
            continue
        elif isinstance(item, dict | list | tuple | BaseModel):
            if depth >= MAX_JSON_DEPTH:
                return f"is nested deeper than {MAX_JSON_DEPTH} levels{where}"
            if isinstance(item, BaseModel):
                item = dict(item)
            entries = item.items() if isinstance(item, dict) else enumerate(item)
            for key, entry in entries:
                if isinstance(item, dict) and not isinstance(key, str):
                    return f"has a key that is not a string{where}"
                inner = f"{where}.{str(key)[:40]}" if where else f" at {str(key)[:40]}"
                inner = where if len(where) > 120 else inner
                stack.append((key, depth + 1, where))
                stack.append((entry, depth + 1, inner))
        else:
            return f"holds a {type(item).__name__}, which is not JSON{where}"
    return None


def storable(value: Any, *, lenient: tuple[type, ...] = PYDANTIC_JSON_TYPES) -> Any:
    """A ``field_validator("*")`` body: ``value`` itself, or a ``ValueError`` naming the problem."""
    problem = storable_problem(value, lenient=lenient)
    if problem is not None:
        raise ValueError(problem)
    return value

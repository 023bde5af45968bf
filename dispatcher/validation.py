"""Field types and value checks shared by action arguments and trigger events (a leaf module).

Names and keys are trimmed of surrounding whitespace (they are looked up and compared); every
other text type is stored exactly as sent, indentation and trailing newlines included.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import math
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
#: Names stored in narrower columns (roles, environments, tool actions).
Name50 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Name100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Key = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$"
    ),
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
#: ``meta`` is a label set, not a document: this many keys at its top level, this deep at most.
MAX_META_KEYS = 100
MAX_META_DEPTH = 8


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


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON: what the size limits on stored JSON count."""
    return len(json.dumps(value, separators=(",", ":"), default=str).encode("utf-8"))


def oversize_problem(name: str, value: Any, limit: int) -> str | None:
    """``"payload is 70000 bytes; the limit is 65536"``, or ``None`` within the limit."""
    size = json_size(value)
    return f"{name} is {size} bytes; the limit is {limit}" if size > limit else None


def json_depth(value: Any) -> int:
    """Levels of objects and arrays in ``value`` (a scalar is 0, ``{"a": 1}`` is 1)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            deepest = max(deepest, depth + 1)
            entries = item.values() if isinstance(item, dict) else item
            stack.extend((entry, depth + 1) for entry in entries)
    return deepest


def meta_problem(meta: dict[str, Any], *, max_bytes: int) -> str | None:
    """Why ``meta`` is too large (keys, nesting, bytes), or ``None``."""
    if len(meta) > MAX_META_KEYS:
        return f"meta has {len(meta)} keys; the limit is {MAX_META_KEYS}"
    if json_depth(meta) > MAX_META_DEPTH:
        return f"meta is nested deeper than {MAX_META_DEPTH} levels"
    return oversize_problem("meta", meta, max_bytes)

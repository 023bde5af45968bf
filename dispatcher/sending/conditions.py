"""Step conditions: ``{"field": "payload.plan", "op": "eq", "value": "pro"}``, all must hold."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Operator = Literal[
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists", "not_exists"
]
_MISSING = object()


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A dotted path into the step's context: ``payload.*``, ``subscriber.*``, ``actor.*``.
    field: str = Field(pattern=r"^(payload|subscriber|actor)(\.[A-Za-z0-9_-]+)+$")
    op: Operator = "eq"
    value: Any = None


def lookup(context: Mapping[str, Any], path: str) -> Any:
    current: Any = context
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


def holds(condition: Condition, context: Mapping[str, Any]) -> bool:
    actual = lookup(context, condition.field)
    if condition.op == "exists":
        return actual is not _MISSING and actual is not None
    if condition.op == "not_exists":
        return actual is _MISSING or actual is None
    if actual is _MISSING:
        return False
    expected = condition.value
    try:
        return _compare(condition.op, actual, expected)
    except TypeError:
        # Comparing unlike types (a number with a string) is a condition that does not hold.
        return False


def _compare(op: str, actual: Any, expected: Any) -> bool:  # noqa: PLR0911 - one line an operator
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if op == "gt":
        return bool(actual > expected)
    if op == "gte":
        return bool(actual >= expected)
    if op == "lt":
        return bool(actual < expected)
    if op == "lte":
        return bool(actual <= expected)
    if op == "in":
        return isinstance(expected, list) and actual in expected
    if op == "not_in":
        return isinstance(expected, list) and actual not in expected
    return isinstance(actual, list | str) and expected in actual  # contains


def all_hold(conditions: Sequence[Mapping[str, Any]], context: Mapping[str, Any]) -> bool:
    return all(holds(Condition.model_validate(item), context) for item in conditions)

"""Action results: ``Ok(value)`` or ``Err(code, message, details)``, never a traceback."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Ok:
    value: Any = None
    ok: Literal[True] = field(default=True, init=False)


class ErrorCode(enum.StrEnum):
    INVALID_ARGS = "invalid_args"
    NOT_FOUND = "not_found"
    UNKNOWN_ACTION = "unknown_action"
    CONFLICT = "conflict"
    FORBIDDEN = "forbidden"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Err:
    code: ErrorCode
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    ok: Literal[False] = field(default=False, init=False)


Result = Ok | Err


def to_wire(result: Result) -> dict[str, Any]:
    """The JSON form a Celery task returns (and Flower shows)."""
    if isinstance(result, Ok):
        return {"ok": True, "value": result.value}
    return {"ok": False, "code": result.code, "message": result.message, "details": result.details}


def from_wire(data: Any) -> Result:
    if isinstance(data, dict) and data.get("ok") is True:
        return Ok(data.get("value"))
    if isinstance(data, dict) and data.get("ok") is False:
        try:
            code = ErrorCode(str(data.get("code")))
        except ValueError:
            return Err(ErrorCode.INTERNAL, "the task returned an unknown error code")
        return Err(code, str(data.get("message")), dict(data.get("details") or {}))
    return Err(ErrorCode.INTERNAL, "the task returned no result value", {"returned": repr(data)})

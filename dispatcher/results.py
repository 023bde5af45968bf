"""Action results: ``Ok(value)`` or ``Err(code, message, details)``, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Ok:
    value: Any = None
    ok: Literal[True] = field(default=True, init=False)


@dataclass(frozen=True)
class Err:
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    ok: Literal[False] = field(default=False, init=False)


Result = Ok | Err


class ErrorCode:
    INVALID_ARGS = "invalid_args"
    NOT_FOUND = "not_found"
    UNKNOWN_ACTION = "unknown_action"
    CONFLICT = "conflict"
    FORBIDDEN = "forbidden"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


def to_wire(result: Result) -> dict[str, Any]:
    """The JSON form a Celery task returns (and Flower shows)."""
    if isinstance(result, Ok):
        return {"ok": True, "value": result.value}
    return {"ok": False, "code": result.code, "message": result.message, "details": result.details}


def from_wire(data: Any) -> Result:
    if isinstance(data, dict) and data.get("ok") is True:
        return Ok(data.get("value"))
    if isinstance(data, dict) and data.get("ok") is False:
        return Err(str(data["code"]), str(data["message"]), dict(data.get("details") or {}))
    return Err(ErrorCode.INTERNAL, "the task returned no result value", {"returned": repr(data)})

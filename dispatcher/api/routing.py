"""The router every resource module starts from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from dispatcher.api.errors import ErrorBody
from dispatcher.api.rate_limit import rate_limited

#: Error answers every authenticated route may give, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "API key missing, malformed, revoked or unknown"},
    413: {"model": ErrorBody, "description": "Request body too large"},
    415: {"model": ErrorBody, "description": "Request body not JSON"},
    422: {"model": ErrorBody, "description": "Validation failed: `errors` names every bad field"},
    429: {"model": ErrorBody, "description": "Rate limit of the key exceeded (`Retry-After`)"},
    503: {"model": ErrorBody, "description": "Database unavailable (`Retry-After`)"},
}

#: The answer of a route whose path names a row the caller's organisation does not have.
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such resource in the caller's organisation"},
}

#: The trigger routes' answer to an event the producer refuses (Novu's `PAYLOAD_VALIDATION`).
TRIGGER_INVALID: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Event refused: `errors` is `[{field, message}]`"},
}


def resource_router(*, prefix: str, tag: str) -> APIRouter:
    """A router whose every route needs an API key within its rate; handlers take the caller
    as ``caller: CallerDep`` (resolved once per request)."""
    return APIRouter(
        prefix=prefix, tags=[tag], dependencies=[Depends(rate_limited)], responses=ERROR_RESPONSES
    )

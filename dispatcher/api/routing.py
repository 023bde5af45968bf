"""The router every resource module starts from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from dispatcher.api.rate_limit import rate_limited

#: Error answers every authenticated route may give, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "API key missing, malformed, revoked or unknown"},
    413: {"description": "Request body too large"},
    415: {"description": "Request body not JSON"},
    422: {"description": "Validation failed: `errors` names every bad field"},
    429: {"description": "Rate limit of the key exceeded (`Retry-After`)"},
    503: {"description": "Database unavailable (`Retry-After`)"},
}


def resource_router(*, prefix: str, tag: str) -> APIRouter:
    """A router whose every route needs an API key within its rate; handlers take the caller
    as ``caller: CallerDep`` (resolved once per request)."""
    return APIRouter(
        prefix=prefix, tags=[tag], dependencies=[Depends(rate_limited)], responses=ERROR_RESPONSES
    )

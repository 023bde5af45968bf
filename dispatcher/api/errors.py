"""Every error answer in Novu's shape, from one place.

Novu's SDKs parse an error body only when it carries ``statusCode``, ``timestamp``, ``path`` and
``message``; the trigger endpoints' 400 adds ``type`` and ``errors: [{field, message}]``, and a
422 ``errors: {field: {messages}}``. Handlers raise :class:`ApiError` (or a subclass); the
handlers registered by :func:`install` turn it, request validation errors, trigger validation
errors, an unavailable database and anything unexpected into such a body::

    ApiError                    status, message, headers
    ├── BadRequestError              400
    ├── UnauthorizedError            401
    ├── NotFoundError                404
    ├── PayloadTooLargeError         413
    ├── UnsupportedMediaTypeError    415
    ├── UnprocessableError           422 with errors {field: {messages}}
    ├── TooManyRequestsError         429 with Retry-After
    └── ServiceUnavailableError      503 with Retry-After

An unexpected exception is logged (its class and traceback, for the operator) and answered 500
with a fixed message: no stack trace, no exception text (which could hold a secret) reaches the
caller. Field names in error bodies are the caller's (camelCase wire names), never ours.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from dispatcher.errors import SchemaError, TriggerError
from dispatcher.runtime.db import DATABASE_UNAVAILABLE

logger = logging.getLogger(__name__)

#: Seconds a caller is asked to wait when the database is unreachable.
DATABASE_RETRY_AFTER = 5


class ApiError(Exception):
    status_code = 500
    message = "internal server error"

    def __init__(
        self, message: str | None = None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.headers = dict(headers or {})

    def extra(self) -> dict[str, Any]:
        """Fields of the body besides the common ones."""
        return {}


class BadRequestError(ApiError):
    status_code = 400
    message = "bad request"


class UnauthorizedError(ApiError):
    status_code = 401
    message = "API key missing, malformed, revoked or unknown"


class NotFoundError(ApiError):
    status_code = 404
    message = "not found"


class PayloadTooLargeError(ApiError):
    status_code = 413
    message = "request body too large"


class UnsupportedMediaTypeError(ApiError):
    status_code = 415
    message = "request bodies must be application/json"


class UnprocessableError(ApiError):
    status_code = 422
    message = "validation failed"

    def __init__(self, errors: Mapping[str, Sequence[str]], message: str | None = None) -> None:
        super().__init__(message)
        self.errors = {field: list(messages) for field, messages in errors.items()}

    def extra(self) -> dict[str, Any]:
        return {"errors": {field: {"messages": m} for field, m in self.errors.items()}}


class TooManyRequestsError(ApiError):
    status_code = 429
    message = "rate limit exceeded"


class ServiceUnavailableError(ApiError):
    status_code = 503
    message = "service unavailable, retry later"


class ErrorBody(BaseModel):
    """Every error answer, for the OpenAPI document: the common fields, and a route's own
    (``type``, ``errors``) besides."""

    model_config = ConfigDict(extra="allow")

    statusCode: int  # noqa: N815 - Novu's wire names
    timestamp: str
    path: str
    message: str


def error_body(
    status_code: int, path: str, message: str, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "statusCode": status_code,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "path": path,
        "message": message,
        **(extra or {}),
    }


def error_response(
    status_code: int,
    path: str,
    message: str,
    *,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status_code, path, message, extra), status_code=status_code, headers=headers
    )


def api_error_response(error: ApiError, path: str) -> JSONResponse:
    return error_response(
        error.status_code, path, error.message, extra=error.extra(), headers=error.headers
    )


#: Segments after which a path names the caller's own keys, kept as they were sent.
VERBATIM_AFTER = frozenset({"payload", "data"})


def wire_field(field: str, renames: Mapping[str, str] | None = None) -> str:
    """A dotted field path of ours in the caller's spelling: each segment in camelCase, with
    ``renames`` for the segments whose wire name differs (``workflow`` is Novu's ``name``),
    except inside the caller's own objects (``payload.user_name`` stays as it is)."""
    renames = renames or {}
    parts: list[str] = []
    verbatim = False
    for part in field.split("."):
        parts.append(part if verbatim else renames.get(part, camel(part)))
        verbatim = verbatim or part in VERBATIM_AFTER
    return ".".join(parts)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _location(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a JSON path: without the request part (``body``) and
    without the tags of the wire unions (segments starting with ``~``, see schemas)."""
    parts = [str(part) for part in loc if not (isinstance(part, str) and part.startswith("~"))]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        kind, parts = parts[0], parts[1:]
        if kind != "body" and parts:
            return ".".join(parts)
    return ".".join(parts) or "body"


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] in {"union_tag_not_found", "union_tag_invalid"}:
        return "must be a subscriber id, a subscriber object or a topic"
    return str(error["msg"])


def validation_errors(exc: RequestValidationError) -> dict[str, list[str]]:
    """Every bad field by its JSON path; the values are not echoed (they may be secrets)."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        # A body that is not JSON at all is located by character offset: name the body.
        field = "body" if error["type"] == "json_invalid" else _location(error["loc"])
        errors.setdefault(field, []).append(_message(error))
    return errors


def trigger_error_response(exc: TriggerError, path: str) -> JSONResponse:
    """A trigger's refused fields: 400 with ``type`` and ``errors: [{field, message}]``."""
    errors = [
        {"field": wire_field(item["field"], TRIGGER_RENAMES), "message": item["message"]}
        for item in exc.errors
    ]
    message = "; ".join(f"{item['field']}: {item['message']}" for item in errors)
    return error_response(
        400, path, message, extra={"type": "PAYLOAD_VALIDATION", "errors": errors}
    )


def database_down_response(exc: Exception, path: str) -> JSONResponse:
    """503 with ``Retry-After``: the database is unreachable (logged) or its schema is behind."""
    if isinstance(exc, SchemaError):
        logger.error("api: %s", exc)
    else:
        logger.warning("api: database unavailable (%s)", type(exc).__name__)
    return api_error_response(
        ServiceUnavailableError(headers={"Retry-After": str(DATABASE_RETRY_AFTER)}), path
    )


def unexpected_response(exc: Exception, method: str, path: str) -> JSONResponse:
    """500 with a fixed message; the class and traceback go to the log only."""
    logger.error("api: unexpected %s answering %s %s", type(exc).__name__, method, path,
                 exc_info=exc)  # fmt: skip
    return error_response(500, path, "internal server error")


def response_for(exc: Exception, method: str, path: str) -> JSONResponse:
    """The answer to ``exc`` raised while answering a request, as :func:`install`'s handlers
    give it (for code that answers outside FastAPI's routing); not for request validation."""
    if isinstance(exc, ApiError):
        return api_error_response(exc, path)
    if isinstance(exc, TriggerError):
        return trigger_error_response(exc, path)
    if isinstance(exc, (SchemaError, *DATABASE_UNAVAILABLE)):
        return database_down_response(exc, path)
    return unexpected_response(exc, method, path)


def install(app: FastAPI) -> None:
    """Register the handlers that answer every error in Novu's shape."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return api_error_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return api_error_response(UnprocessableError(validation_errors(exc)), request.url.path)

    async def on_trigger_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TriggerError)
        return trigger_error_response(exc, request.url.path)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == BODY_NOT_PARSED:
            # FastAPI's answer to a JSON body that is not UTF-8: a bad body like any other.
            error = UnprocessableError({"body": ["must be JSON encoded as UTF-8"]})
            return api_error_response(error, request.url.path)
        return error_response(
            exc.status_code, request.url.path, str(exc.detail), headers=exc.headers
        )

    async def on_database_down(request: Request, exc: Exception) -> JSONResponse:
        return database_down_response(exc, request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_response(exc, request.method, request.url.path)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(TriggerError, on_trigger_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(SchemaError, on_database_down)
    for error_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error_class, on_database_down)
    app.add_exception_handler(Exception, on_unexpected)


#: FastAPI's detail when it cannot decode a JSON body at all.
BODY_NOT_PARSED = "There was an error parsing the body"

#: Our trigger fields whose Novu names differ.
TRIGGER_RENAMES = {"workflow": "name", "topic": "topicKey"}


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))

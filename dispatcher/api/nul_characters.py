"""A NUL character in the path or the query, or a control character in a header that reaches
storage: a 4xx in Novu's error shape, before any handler.

PostgreSQL text cannot hold U+0000, so such a value would fail in the database (as a 500) once
it reached a query; no id, key or filter of ours contains one. The headers whose values are
looked up or kept (``Authorization``, ``Idempotency-Key``) must hold no control character at
all (C0 but tab, and DEL): no API key or idempotency key of any client has one, and a value
that does is refused as a whole rather than digested into a lookup that cannot match. A bad
``Authorization`` is the 401 of any malformed key; a bad ``Idempotency-Key`` a 422 naming it.
A plain ASGI middleware, so that every route is covered without a validator on each parameter.

HTTP parsers refuse most control characters in headers before the application sees them;
:mod:`dispatcher.api.http_protocol` answers those in the same shape.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from dispatcher.api.errors import (
    ApiError,
    UnauthorizedError,
    UnprocessableError,
    api_error_response,
)

MESSAGE = "must not contain the NUL character"
HEADER_MESSAGE = "must not contain control characters"
#: C0 controls but tab, and DEL.
CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
IDEMPOTENCY_HEADER = b"idempotency-key"


class NulCharacters:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error = refused(scope)
            if error is not None:
                await api_error_response(error, scope["path"])(scope, receive, send)
                return
        await self.app(scope, receive, send)


def refused(scope: Scope) -> ApiError | None:
    """Why the request is refused before routing, if it is."""
    fields = nul_fields(scope["path"], scope.get("query_string", b""))
    if fields:
        return UnprocessableError({field: [MESSAGE] for field in fields})
    for name, value in scope.get("headers", ()):
        if not CONTROL.search(value):
            continue
        if name == b"authorization":
            return UnauthorizedError()
        if name == IDEMPOTENCY_HEADER:
            return UnprocessableError({IDEMPOTENCY_HEADER.decode(): [HEADER_MESSAGE]})
    return None


def nul_fields(path: str, query_string: bytes) -> list[str]:
    """The names of the parameters holding a NUL (``path`` for the path), in order."""
    fields = ["path"] if "\x00" in path else []
    if not query_string:
        return fields
    query = query_string.decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8"):
        field = name.replace("\x00", "") or "query"
        if ("\x00" in name or "\x00" in value) and field not in fields:
            fields.append(field)
    return fields

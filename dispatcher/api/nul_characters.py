"""A NUL character in the path or the query: 422 naming the parameter, before any handler.

PostgreSQL text cannot hold U+0000, so such a value would fail in the database (as a 500) once
it reached a query; no id, key or filter of ours contains one. A plain ASGI middleware, so that
every route is covered without a validator on each parameter.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from dispatcher.api.errors import UnprocessableError, api_error_response

MESSAGE = "must not contain the NUL character"


class NulCharacters:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            fields = nul_fields(scope["path"], scope.get("query_string", b""))
            if fields:
                error = UnprocessableError({field: [MESSAGE] for field in fields})
                await api_error_response(error, scope["path"])(scope, receive, send)
                return
        await self.app(scope, receive, send)


def nul_fields(path: str, query_string: bytes) -> list[str]:
    """The names of the parameters holding a NUL (``path`` for the path), in order."""
    fields = ["path"] if "\x00" in path else []
    query = query_string.decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8"):
        field = name.replace("\x00", "") or "query"
        if ("\x00" in name or "\x00" in value) and field not in fields:
            fields.append(field)
    return fields

"""Cross-origin calls to the inbox routes, allowed per organisation.

Pages of the organisation's own origins (``dispatcher inbox-origins``) call ``/v1/inbox/...``
from browsers. A preflight names no organisation (it carries no token), so it is answered for
an origin some organisation allows and refused (403, no CORS headers) otherwise; the request
itself is then checked against its own organisation (:func:`check_origin`, in the routes' auth
dependency), which records the origin for this middleware to echo. Requests without ``Origin``
(servers, scripts) are not cross-origin calls and pass. Other paths are left alone.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.api.errors import ApiError
from dispatcher.api.inbox.secrets import InboxKeys, origin_allowed_anywhere

PREFIX = "/v1/inbox"
ALLOWED_METHODS = "GET, POST, PATCH, PUT, DELETE, OPTIONS"
ALLOWED_HEADERS = (
    "Authorization, Content-Type, Novu-API-Version, Novu-Client-Version, "
    "Novu-Application-Identifier, Novu-User-Agent"
)
STATE_KEY = "inbox_cors_origin"


class OriginRefusedError(ApiError):
    status_code = 403
    message = "this origin may not call the inbox of this application"


def check_origin(request: Request, keys: InboxKeys) -> None:
    """Refuse an ``Origin`` the organisation does not allow; remember an allowed one."""
    origin = request.headers.get("origin")
    if origin is None or origin == f"{request.url.scheme}://{request.headers.get('host')}":
        return  # not a cross-origin call (a page of this server, or no page at all)
    if origin not in keys.cors_origins:
        raise OriginRefusedError()
    request.scope.setdefault("state", {})[STATE_KEY] = origin


class InboxCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        origin = request.headers.get("origin")
        if request.method == "OPTIONS" and origin is not None:
            await self._preflight(origin, scope, receive, send)
            return

        async def send_with_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                allowed = scope.get("state", {}).get(STATE_KEY)
                if allowed:
                    headers = list(message.get("headers", []))
                    headers.append((b"access-control-allow-origin", allowed.encode()))
                    headers.append((b"vary", b"Origin"))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_origin)

    @staticmethod
    async def _preflight(origin: str, scope: Scope, receive: Receive, send: Send) -> None:
        if not await run_in_threadpool(origin_allowed_anywhere, origin):
            await Response(status_code=403)(scope, receive, send)
            return
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }
        await Response(status_code=204, headers=headers)(scope, receive, send)

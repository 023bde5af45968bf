"""``POST /v1/webhooks/providers/{integrationId}`` answered without FastAPI's request machinery.

A provider sends its callbacks in bursts (one request an event, for Twilio and others), and
FastAPI's routing and request handling cost more than verifying and queueing one event. This
middleware, innermost with :class:`~dispatcher.api.single_trigger.SingleTriggers` (the body
limit and the NUL checks apply as to every request), serves the path with the route's own
:func:`~dispatcher.api.routers.callbacks.take_callback` and answers its errors as the
application's handlers do. An id the route would refuse (empty, longer than 100 characters, or
with a further ``/``) goes on to the route, as does every other path and method.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from dispatcher.api.errors import response_for
from dispatcher.api.raw_asgi import read_body, send_json
from dispatcher.api.routers.callbacks import public_url, take_callback
from dispatcher.config import get_settings
from providers.callbacks import CallbackRequest

PREFIX = "/v1/webhooks/providers/"
MAX_ID_LENGTH = 100


class ProviderCallbacks:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        integration_id = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
        if (
            scope.get("method") != "POST"
            or not integration_id
            or len(integration_id) > MAX_ID_LENGTH
            or "/" in integration_id
        ):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the provider went away; it sends the callback again
        callback = CallbackRequest(
            method="POST",
            url=public_url(Request(scope), get_settings()),
            headers=dict(Headers(scope=scope)),
            body=body,
        )
        try:
            answer = await take_callback(integration_id, callback)
        except Exception as exc:  # answered as the application's handlers answer it
            await response_for(exc, "POST", path)(scope, receive, send)
            return
        await send_json(send, 200, answer, {})

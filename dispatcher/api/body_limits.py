"""Request bodies: at most ``DISPATCHER_API_MAX_BODY_BYTES`` (413), and JSON (415).

Provider callbacks (:data:`ANY_MEDIA_PREFIX`) are the exception to JSON: Twilio and Plivo post
forms, Amazon SNS ``text/plain``; their provider module reads and verifies whatever they send.

A plain ASGI middleware, outermost, so that nothing reads an oversized body: a declared
``Content-Length`` over the limit is refused before a byte is read, and a chunked body is read
up to the limit only. The body read is handed on whole to the application.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.api.errors import (
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    api_error_response,
)

JSON_TYPES = ("application/json",)
#: Paths whose bodies may be of any media type (the size limit still holds).
ANY_MEDIA_PREFIX = "/v1/webhooks/providers/"


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


class BodyLimits:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path = scope["path"]
        declared = headers.get("content-length")
        has_body = (declared is not None and declared.strip() not in {"", "0"}) or (
            "chunked" in headers.get("transfer-encoding", "").lower()
        )
        if not has_body:
            await self.app(scope, receive, send)
            return
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await api_error_response(PayloadTooLargeError(), path)(scope, receive, send)
            return
        if not path.startswith(ANY_MEDIA_PREFIX) and not is_json(headers.get("content-type", "")):
            await api_error_response(UnsupportedMediaTypeError(), path)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await api_error_response(PayloadTooLargeError(), path)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay(b"".join(chunks), receive), send)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands out ``body`` once, then waits on the real one (disconnects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed

"""Reading a request and sending a JSON answer in plain ASGI, for the paths served beside
FastAPI's routing (:mod:`dispatcher.api.single_trigger`, :mod:`dispatcher.api.callback_path`)."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Message, Receive, Send


async def read_body(receive: Receive) -> bytes | None:
    """The whole body, or ``None`` when the client went away first."""
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(send: Send, status: int, content: Any, headers: dict[str, str]) -> None:
    """What Starlette's ``JSONResponse`` sends, with ``headers`` besides."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    raw = [
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"content-type", b"application/json"),
        *(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        ),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})

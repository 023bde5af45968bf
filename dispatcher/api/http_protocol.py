"""The HTTP protocol ``dispatcher api`` serves with: uvicorn's, but a request its parser refuses
(a control character in a header, a malformed request line) is answered 400 in Novu's error
shape, as the application answers everything else, instead of uvicorn's plain-text line.

The parser refuses before the application runs, so this is the one answer no middleware can
give; the request's path is not known then and is sent empty.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.h11_impl import H11Protocol

from dispatcher.api.errors import error_body

MESSAGE = "malformed HTTP request (a header value holds a control character, or worse)"

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - httptools is optional; uvicorn then parses with h11
    _Base = H11Protocol  # type: ignore[assignment,misc]


def bad_request() -> bytes:
    body = json.dumps(error_body(400, "", MESSAGE), separators=(",", ":")).encode()
    return b"".join(
        [
            b"HTTP/1.1 400 Bad Request\r\n",
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class NovuErrorsProtocol(_Base):
    def send_400_response(self, msg: str) -> None:
        self.transport.write(bad_request())
        self.transport.close()

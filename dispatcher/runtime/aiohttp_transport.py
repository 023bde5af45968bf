"""The shared HTTP/1.1 transport (aiohttp under httpx), with its failures named as they happened.

``httpx_aiohttp`` maps every ``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout``: a
refused connection, a server that read the request and hung up, and a connection reset after
the request was sent all look like a connect timeout. Whether a resend can duplicate a message
depends on exactly that difference, so :class:`ClassifiedAiohttpTransport` maps aiohttp's own
errors again, here and only here, to the ``httpx`` error of the phase it failed in:

* before the request was written (``httpx.ConnectError``, ``httpx.ConnectTimeout``): connection
  refused, name not resolved, TLS handshake, connect timeout. A resend is safe;
* after it may have been written (``httpx.ReadTimeout``, ``httpx.RemoteProtocolError``,
  ``httpx.ReadError``): read timeout, server disconnected, connection reset, incomplete or
  malformed answer. A resend may duplicate.

Each error's message is a :class:`providers.http.TransportFailure`, which
``providers.http.send_request`` turns into the attempt's error text.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from providers.http import TransportFailure

_RESET = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})

#: aiohttp's errors, most specific first, with the ``httpx`` error of the phase they happen in.
_PHASES: tuple[tuple[type[aiohttp.ClientError], type[httpx.TransportError], TransportFailure], ...]
_PHASES = (
    # Connecting: nothing of the request was written yet.
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout, TransportFailure.CONNECT_TIMEOUT),
    (aiohttp.ClientConnectorDNSError, httpx.ConnectError, TransportFailure.NAME_NOT_RESOLVED),
    (aiohttp.ClientConnectorCertificateError, httpx.ConnectError, TransportFailure.TLS_FAILED),
    (aiohttp.ClientSSLError, httpx.ConnectError, TransportFailure.TLS_FAILED),
    (aiohttp.ClientConnectorError, httpx.ConnectError, TransportFailure.CONNECT_FAILED),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol, TransportFailure.INVALID_URL),
    # Connected: the request may have been written, and acted on.
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout, TransportFailure.READ_TIMEOUT),
    (
        aiohttp.ServerDisconnectedError,
        httpx.RemoteProtocolError,
        TransportFailure.DISCONNECTED,
    ),
    (aiohttp.ClientPayloadError, httpx.ReadError, TransportFailure.INCOMPLETE_ANSWER),
    (aiohttp.ClientOSError, httpx.ReadError, TransportFailure.CONNECTION_LOST),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError, TransportFailure.MALFORMED_ANSWER),
)


def classified(error: aiohttp.ClientError) -> httpx.TransportError:
    """The ``httpx`` error for an aiohttp failure, by the phase it happened in (anything else
    aiohttp raises comes after connecting: a lost connection)."""
    for aiohttp_class, httpx_class, failure in _PHASES:
        if isinstance(error, aiohttp_class):
            return httpx_class(_refined(error, failure))
    return httpx.ReadError(TransportFailure.CONNECTION_LOST)


def _refined(error: aiohttp.ClientError, failure: TransportFailure) -> TransportFailure:
    """What the socket error number says beyond the class: refused, or reset."""
    code = error.errno if isinstance(error, OSError) else None
    if failure is TransportFailure.CONNECT_FAILED and code == errno.ECONNREFUSED:
        return TransportFailure.CONNECTION_REFUSED
    if failure is TransportFailure.CONNECTION_LOST and code in _RESET:
        return TransportFailure.CONNECTION_RESET
    return failure


@contextmanager
def classified_errors() -> Iterator[None]:
    """Re-raise aiohttp's errors, also those ``httpx_aiohttp`` already mapped, as
    :func:`classified` says."""
    try:
        yield
    except httpx.TransportError as exc:
        cause = exc.__cause__
        if not isinstance(cause, aiohttp.ClientError):
            raise
        raise classified(cause) from cause
    except aiohttp.ClientError as exc:
        raise classified(exc) from exc


class ClassifiedStream(httpx.AsyncByteStream):
    """An answer's body, whose read errors (a connection lost mid-answer) are classified too."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with classified_errors():
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        with classified_errors():
            await self._inner.aclose()


class ClassifiedAiohttpTransport(AiohttpTransport):
    """``httpx_aiohttp``'s transport whose errors say whether the request may have been sent."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with classified_errors():
            response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = ClassifiedStream(response.stream)
        return response

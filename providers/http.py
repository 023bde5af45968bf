"""HTTP helpers shared by providers: one guarded request call, one status classifier and one
reader of ``Retry-After`` (:func:`retry_after_header`).

``httpx`` errors never leave this module: they become :mod:`providers.errors` classes whose
messages name the failure kind only (a URL may carry a token, as Telegram's and Slack's do). A
transport failure says what happened and whether the request may have reached the provider
(:data:`NOT_SENT`): only then is it an :class:`~providers.errors.AmbiguousError`.
For the same reason, importing this module makes httpx's request log lines show only the origin.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from providers.errors import (
    MAX_DETAIL,
    AmbiguousError,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.retry_after import parse_retry_after

MAX_ERROR_DETAIL = MAX_DETAIL
REDACTED = "[redacted]"

ErrorClass = type[ProviderError]

#: What a status code means when the provider's own table says nothing about it.
DEFAULT_STATUS_TABLE: Mapping[int, ErrorClass] = {
    400: IntegrationError,
    401: IntegrationError,
    402: IntegrationError,
    403: IntegrationError,
    404: IntegrationError,
    408: RetryableError,
    409: RetryableError,
    413: RecipientError,
    422: IntegrationError,
    425: RetryableError,
    429: RetryableError,
}


def retry_after_header(response: httpx.Response) -> float | None:
    """Seconds the answer's ``Retry-After`` asks for (:func:`parse_retry_after`, the one parser
    every provider reads it with)."""
    return parse_retry_after(response.headers.get("retry-after"))


def error_detail(response: httpx.Response) -> str:
    """A short, single-line excerpt of an error body for attempt records."""
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""
    text = " ".join(text.split())
    return text[:MAX_ERROR_DETAIL]


def classify_status(
    provider: str,
    response: httpx.Response,
    *,
    table: Mapping[int, ErrorClass] | None = None,
    message: str | None = None,
    provider_code: str | None = None,
    retry_after: float | None = None,
) -> ProviderError:
    """Map a non-success response to its error class (5xx retry, 429 honours Retry-After, or
    ``retry_after`` when the provider read the wait elsewhere)."""
    status = response.status_code
    merged: dict[int, ErrorClass] = dict(DEFAULT_STATUS_TABLE)
    if table:
        merged.update(table)
    if status in merged:
        error_class = merged[status]
    elif status >= 500:
        error_class = RetryableError
    else:
        error_class = IntegrationError
    text = message if message is not None else f"HTTP {status}: {error_detail(response)}".strip()
    if error_class is RetryableError:
        if retry_after is None:
            retry_after = retry_after_header(response)
        return RetryableError(
            provider, text, status_code=status, provider_code=provider_code, retry_after=retry_after
        )
    return error_class(provider, text, status_code=status, provider_code=provider_code)


class TransportFailure(enum.StrEnum):
    """What went wrong below HTTP, as a transport names it in the ``httpx`` error it raises
    (the dispatcher's aiohttp transport does; other transports are described by error class)."""

    CONNECTION_REFUSED = "connection refused"
    NAME_NOT_RESOLVED = "host name not resolved"
    TLS_FAILED = "TLS handshake failed"
    CONNECT_FAILED = "connect failed"
    CONNECT_TIMEOUT = "connect timeout"
    INVALID_URL = "invalid URL"
    READ_TIMEOUT = "read timeout"
    DISCONNECTED = "server disconnected without an answer"
    CONNECTION_RESET = "connection reset"
    CONNECTION_LOST = "connection lost"
    INCOMPLETE_ANSWER = "incomplete answer"
    MALFORMED_ANSWER = "malformed answer"


#: Failures before any byte of the request can have reached the provider: resending is safe.
#: Every other transport error may come after the request was written, so it is ambiguous.
NOT_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
    httpx.LocalProtocolError,
)

#: How an error without a :class:`TransportFailure` (another transport's) is described.
_BY_CLASS: Mapping[type[httpx.TransportError], str] = {
    httpx.ConnectError: TransportFailure.CONNECT_FAILED,
    httpx.ConnectTimeout: TransportFailure.CONNECT_TIMEOUT,
    httpx.PoolTimeout: "no free connection in time",
    httpx.ReadTimeout: TransportFailure.READ_TIMEOUT,
    httpx.WriteTimeout: "write timeout",
    httpx.ReadError: TransportFailure.CONNECTION_LOST,
    httpx.WriteError: "connection lost while sending",
    httpx.RemoteProtocolError: "connection closed or answer malformed",
}


def transport_failure(error: httpx.TransportError) -> str:
    """What happened, in a few words that carry no URL."""
    named = error.args[0] if error.args else None
    if isinstance(named, TransportFailure):
        return named.value
    for error_class in type(error).__mro__:
        if error_class in _BY_CLASS:
            return _BY_CLASS[error_class]
    return "transport error"


def transport_error(provider: str, error: httpx.TransportError) -> RetryableError:
    """The provider error of a transport failure: ambiguous unless it came before sending."""
    what = f"{transport_failure(error)} ({type(error).__name__})"
    if isinstance(error, NOT_SENT):
        return RetryableError(provider, f"not sent: {what}")
    return AmbiguousError(provider, f"{what}; the request may have reached the provider")


class RefusedConnectionError(Exception):
    """Raised by the connector a dispatcher builds its HTTP clients (and SMTP connections)
    with, when the address it was about to connect to is not allowed.

    Not an ``httpx`` or ``OSError`` subclass on purpose: the HTTP libraries pass it through
    unchanged instead of folding it into a retryable connection error. ``reason`` names the
    host and why, never a path or query.
    """

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(reason)
        self.host = host
        self.reason = reason


class DestinationRefusedError(IntegrationError):
    """A send whose destination the dispatcher refused at connect time: a configuration
    fault, never retried. ``host`` is the refused host, so the dispatcher can tell a
    subscriber's own webhook URL from the integration's settings."""

    def __init__(self, provider: str, refused: RefusedConnectionError) -> None:
        super().__init__(provider, f"destination refused: {refused.reason}")
        self.host = refused.host


@functools.lru_cache(maxsize=4096)
def parsed_url(url: str) -> httpx.URL:
    """httpx parses a string URL on every request (about 5% of a sending worker's time when
    profiled); most providers post to a handful of fixed URLs."""
    return httpx.URL(url)


async def send_request(
    provider: str,
    client: httpx.AsyncClient,
    method: str,
    url: str,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; transport failures become :class:`RetryableError` (an
    :class:`AmbiguousError` when the request may have reached the provider), a destination the
    client's connector refused :class:`DestinationRefusedError`.

    The returned response may have any status: the caller classifies it.
    """
    try:
        response = await client.request(method, parsed_url(url), **kwargs)
        await response.aread()
    except RefusedConnectionError as exc:
        raise DestinationRefusedError(provider, exc) from None
    except httpx.TransportError as exc:
        raise transport_error(provider, exc) from None
    return response


class AnswerTooLargeError(IntegrationError):
    """An answer longer than the caller's limit: not read further, never retried."""


async def send_bounded_request(
    provider: str,
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    **kwargs: Any,
) -> tuple[httpx.Response, bytes]:
    """:func:`send_request` for a tenant's URL whose answer is read up to ``max_bytes`` (one
    byte more raises :class:`AnswerTooLargeError`) within ``timeout`` seconds for the whole
    exchange (a timeout is retryable: the caller resends). The response is closed on return."""
    request = client.build_request(
        method, url, timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)), **kwargs
    )
    try:
        async with asyncio.timeout(timeout):
            response = await client.send(request, stream=True)
            try:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise AnswerTooLargeError(provider, f"answer larger than {max_bytes} bytes")
                body = bytearray()
                async for chunk in _raw_chunks(response):
                    body += chunk
                    if len(body) > max_bytes:
                        raise AnswerTooLargeError(provider, f"answer larger than {max_bytes} bytes")
            finally:
                await response.aclose()
    except TimeoutError:
        raise RetryableError(provider, f"no complete answer within {timeout:g}s") from None
    except RefusedConnectionError as exc:
        raise DestinationRefusedError(provider, exc) from None
    except httpx.TransportError as exc:
        error = transport_error(provider, exc)
        raise RetryableError(provider, error.reason, status_code=error.status_code) from None
    return response, bytes(body)


async def _raw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The answer's bytes as they arrive, undecoded (a small encoded chunk may expand a
    thousandfold); a transport that hands over answers already read gives them whole."""
    if response.is_stream_consumed:
        yield response.content
        return
    async for chunk in response.aiter_raw():
        yield chunk


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object, or an empty dict when it is not one."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# A URL may carry a credential (webhook URLs, Telegram's bot token): httpx logs URLs whole.


class RequestLogRedactor(logging.Filter):
    """Rewrites the URL of ``httpx``'s ``HTTP Request: <method> <url> ...`` records to its origin.

    A webhook URL or a Telegram method URL is a credential, and ``httpx`` logs it whole.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            str(record.msg).startswith("HTTP Request:")
            and isinstance(args, tuple)
            and len(args) >= 2
            and isinstance(args[1], httpx.URL | str)
        ):
            record.args = (args[0], origin(args[1]), *args[2:])
        return True


def origin(url: httpx.URL | str) -> str:
    """``scheme://host[:port]`` of ``url``, with ``/[redacted]`` when it had a path or query."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        port = f":{parsed.port}" if parsed.port else ""
        rest = f"/{REDACTED}" if parsed.path not in ("", "/") or parsed.query else ""
        return f"{parsed.scheme}://{parsed.host}{port}{rest}"
    except (httpx.InvalidURL, ValueError, TypeError):
        return REDACTED


def install_request_log_redactor(logger_name: str = "httpx") -> None:
    """Add :class:`RequestLogRedactor` to ``logger_name`` once (idempotent)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(existing, RequestLogRedactor) for existing in logger.filters):
        logger.addFilter(RequestLogRedactor())


install_request_log_redactor()

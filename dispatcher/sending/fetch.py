"""Fetch steps: one HTTP request per notification whose JSON answer is merged into its payload.

A fetch step's ``config`` (:class:`FetchConfig`) names a ``url`` (a template over ``payload``,
``subscriber`` and ``actor``), a ``method`` (``GET`` or ``POST``), for a POST an optional
``body`` (a JSON object whose string values are templates; by default the payload itself),
optional ``headers`` (templates too), ``timeout_seconds``, ``max_bytes`` and an optional
``merge_key``. The answer must be JSON: with ``merge_key`` it is stored at
``payload[merge_key]``; without, it must be an object, and its keys are merged over the
payload's top level (:func:`merge_answer`).

The fetch is a delivery row of its own (``step_kind`` ``fetch``, no channel), so it is claimed,
leased, retried and logged (``delivery_attempts``, provider ``fetch``) like a send. The
deliveries of the steps after it are written ``queued`` with no due time and
``meta.after_fetch`` naming the fetch's position; when the fetch's outcome is written, in the
same transaction, they are made due (sent or skipped fetch) or failed with the fetch's reason
(:mod:`dispatcher.sending.store`). Here: the config's validation, the request rendered from it,
the request made (:func:`perform`) and the answer merged, without database work.

What :func:`perform` raises is a :mod:`providers.errors` class, as a provider's send would:
retryable (connection errors, timeouts, 408/409/425/429 and 5xx, with ``Retry-After``) or an
:class:`~providers.errors.IntegrationError`, which is not retried (other 4xx, a URL the guard
refuses, an answer too large, not JSON, or not an object without ``merge_key``). Reasons name
the status or the failure, never the URL's path or query, a header or the answer's body.

Every request carries ``Idempotency-Key`` (the fetch's delivery id, the same on each retry). With
``sign`` it is signed the way :mod:`providers.webhook` signs its posts (``X-Dispatcher-Timestamp``
and ``X-Dispatcher-Signature: v1=<HMAC-SHA256 of "{timestamp}.{raw body}">``) with the signing
secret of the organisation's ``webhook`` integration, so the receiver authenticates the
dispatcher with no secret in the workflow's config; a GET's body is empty, so its signature
proves who sent it and when, not which URL it asked for.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from dispatcher.runtime.url_guard import DestinationGuard, UnsafeDestinationError
from dispatcher.sending.rendering import RenderError, TemplateRenderer
from providers.errors import IntegrationError
from providers.http import DestinationRefusedError, classify_status, send_bounded_request
from providers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

#: The attempt log's ``provider`` of a fetch step's requests.
FETCH_PROVIDER = "fetch"
#: The provider whose integration's signing secret signs a fetch step with ``sign``.
SIGNING_PROVIDER = "webhook"
#: ``Delivery.meta`` key of a delivery that waits for a fetch step: ``{"position": <the
#: fetch's step position>, "delay": <seconds of delay steps between the fetch and it>}``.
AFTER_FETCH = "after_fetch"

MAX_TIMEOUT_SECONDS = 30.0
DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_ANSWER_BYTES = 1024 * 1024
DEFAULT_ANSWER_BYTES = 64 * 1024
MAX_URL_LENGTH = 2000
MAX_HEADERS = 20
#: Headers the dispatcher sets itself (or the connection needs): a step may not set them.
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "accept-encoding",
     "content-type", "user-agent", "idempotency-key", TIMESTAMP_HEADER.lower(),
     SIGNATURE_HEADER.lower()}
)  # fmt: skip
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}")
_MERGE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


class FetchConfig(BaseModel):
    """A fetch step's ``config``, as stored; the templates in it are checked when the workflow
    is written (:mod:`dispatcher.actions.workflows`)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    method: Literal["GET", "POST"] = "GET"
    #: POST only: a JSON object whose string values are templates; absent: the payload.
    body: dict[str, Any] | None = None
    #: Stored in the workflow's config in plain text (not an encrypted credential).
    headers: dict[str, str] = Field(default_factory=dict, max_length=MAX_HEADERS)
    timeout_seconds: float = Field(
        default=DEFAULT_TIMEOUT_SECONDS, gt=0, le=MAX_TIMEOUT_SECONDS, allow_inf_nan=False
    )
    max_bytes: int = Field(default=DEFAULT_ANSWER_BYTES, ge=1, le=MAX_ANSWER_BYTES)
    merge_key: str | None = None
    #: Sign the request as the webhook provider signs its posts, with the signing secret of
    #: the organisation's webhook integration (:data:`SIGNING_PROVIDER`).
    sign: bool = False

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if "{" in url.split("://", 1)[0] or not url.lower().startswith(("http://", "https://")):
            raise ValueError("an http:// or https:// URL (templates may fill in what follows)")
        return url

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by the dispatcher")
        return headers

    @field_validator("merge_key")
    @classmethod
    def _merge_key(cls, value: str | None) -> str | None:
        if value is not None and not _MERGE_KEY.fullmatch(value):
            raise ValueError("a payload key: letters, digits and _, not starting with a digit")
        return value

    @model_validator(mode="after")
    def _body_only_for_post(self) -> FetchConfig:
        if self.body is not None and self.method != "POST":
            raise ValueError("body: only a POST sends a body")
        return self

    def templates(self) -> dict[str, str]:
        """Every template in the config, by its location (``url``, ``headers.X``, ``body.y``)."""
        found = {"url": self.url}
        found.update({f"headers.{name}": value for name, value in self.headers.items()})
        for path, value in _strings(self.body or {}, "body"):
            found[path] = value
        return found


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, Mapping):
        return [item for key, inner in value.items() for item in _strings(inner, f"{path}.{key}")]
    if isinstance(value, list):
        return [item for i, inner in enumerate(value) for item in _strings(inner, f"{path}.{i}")]
    return []


@dataclass(frozen=True, repr=False)
class FetchRequest:
    """A fetch rendered for one notification: what :func:`perform` sends."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    timeout: float
    max_bytes: int
    merge_key: str | None
    #: Sent as ``Idempotency-Key``: the fetch's delivery id, the same on every retry.
    idempotency_key: str | None = None
    #: The webhook integration's signing secret when the step signs its requests.
    signing_secret: SecretStr | None = None

    def __repr__(self) -> str:
        # A URL's query and a header may carry a token.
        return f"FetchRequest({self.method} {described_url(self.url)})"


@dataclass(frozen=True)
class Fetched:
    """A fetch's answer, parsed; ``size`` is its length in bytes."""

    value: Any
    size: int


def described_url(url: str) -> str:
    """``scheme://host[:port]/path`` without user info, query or fragment: what the attempt
    log and the delivery's content keep of a fetch URL (a query often carries a token)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(malformed URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def render_request(
    config: FetchConfig,
    renderer: TemplateRenderer,
    context: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
    signing_secret: SecretStr | None = None,
) -> FetchRequest:
    """The request for one notification; a template that does not render raises
    :class:`RenderError` naming its location (``url``, ``headers.X``, ``body.y``)."""
    url = _render(renderer, "url", config.url, context)
    headers = tuple(
        (name, _render(renderer, f"headers.{name}", value, context))
        for name, value in config.headers.items()
    )
    body: bytes | None = None
    if config.method == "POST":
        document = (
            _render_value(renderer, config.body, context, "body")
            if config.body is not None
            else context.get("payload", {})
        )
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return FetchRequest(
        config.method, url, headers, body, config.timeout_seconds, config.max_bytes,
        config.merge_key, idempotency_key, signing_secret,
    )  # fmt: skip


def _render(renderer: TemplateRenderer, where: str, source: str, context: Mapping[str, Any]) -> str:
    try:
        return renderer.render(source, context)
    except RenderError as exc:
        raise RenderError(f"config.{where}: {exc}") from None


def _render_value(
    renderer: TemplateRenderer, value: Any, context: Mapping[str, Any], path: str
) -> Any:
    if isinstance(value, str):
        return _render(renderer, path, value, context)
    if isinstance(value, Mapping):
        return {
            key: _render_value(renderer, inner, context, f"{path}.{key}")
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [
            _render_value(renderer, inner, context, f"{path}.{i}") for i, inner in enumerate(value)
        ]
    return value


def parse_answer(body: bytes, merge_key: str | None) -> Fetched:
    """The answer as JSON; :class:`IntegrationError` when it is not JSON, or not an object
    while there is no ``merge_key`` to put it under."""
    try:
        value = json.loads(body)
    except ValueError:
        raise IntegrationError(FETCH_PROVIDER, "the answer is not JSON") from None
    if merge_key is None and not isinstance(value, dict):
        raise IntegrationError(
            FETCH_PROVIDER,
            f"the answer is a JSON {_json_type(value)}, not an object; set merge_key to keep it",
        )
    return Fetched(value, len(body))


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def merge_answer(payload: Mapping[str, Any], answer: Any, merge_key: str | None) -> dict[str, Any]:
    """The payload with the answer merged: under ``merge_key``, or its keys over the top level
    (an answer's key replaces the payload's; nested objects are replaced, not merged)."""
    if merge_key is not None:
        return {**payload, merge_key: answer}
    if not isinstance(answer, Mapping):
        raise ValueError("an answer merged at the top level must be an object")
    return {**payload, **answer}


async def perform(
    request: FetchRequest,
    client: httpx.AsyncClient,
    guard: DestinationGuard,
    clock: Callable[[], float] = time.time,
) -> tuple[Fetched, int]:
    """Make the request (its URL checked by ``guard`` first; the client's connector checks the
    address it connects to again); the parsed answer and its HTTP status, or a
    :mod:`providers.errors` error."""
    try:
        await guard.check(request.url)
    except UnsafeDestinationError as exc:
        raise IntegrationError(FETCH_PROVIDER, f"refused by the URL guard: {exc}") from None
    headers = {
        **dict(request.headers),
        "Accept": "application/json",
        # An encoded answer could expand past max_bytes in one decoded chunk.
        "Accept-Encoding": "identity",
    }
    if request.body is not None:
        headers["Content-Type"] = "application/json"
    if request.idempotency_key is not None:
        headers["Idempotency-Key"] = request.idempotency_key
    if request.signing_secret is not None:
        # Signed at each attempt, so a retry carries a fresh timestamp.
        timestamp = str(int(clock()))
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = sign(
            request.signing_secret.get_secret_value(), timestamp, request.body or b""
        )
    try:
        response, body = await send_bounded_request(
            FETCH_PROVIDER, client, request.method, request.url, max_bytes=request.max_bytes,
            timeout=request.timeout, headers=headers, content=request.body,
        )  # fmt: skip
    except DestinationRefusedError as exc:
        # The name resolved to another address when connecting (rebinding): refused all the same.
        reason = exc.reason.removeprefix("destination refused: ")
        raise IntegrationError(
            FETCH_PROVIDER, f"refused by the URL guard when connecting: {reason}"
        ) from None
    if not 200 <= response.status_code < 300:
        # The status alone: an error page may echo the request, tokens included.
        raise classify_status(
            FETCH_PROVIDER, response, message=f"HTTP {response.status_code} from the fetch URL"
        )
    return parse_answer(body, request.merge_key), response.status_code

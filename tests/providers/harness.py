"""One shared contract harness for HTTP providers.

A provider's test module declares a :class:`ProviderCase` (its documented endpoint, a check of the
request it must build, and the documented answers for each class of outcome) and subclasses
:class:`ProviderContract`; pytest runs the same table of tests for every provider:
validation, success with message id, bad credentials, invalid recipient, 429 with Retry-After,
5xx, timeout, and redaction of every secret from errors and logs.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
import respx
from pydantic import ValidationError

from providers.base import Message, Provider, SendResult
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError


@dataclass(frozen=True)
class Answer:
    status: int
    json: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> httpx.Response:
        if self.json is not None:
            return httpx.Response(self.status, json=self.json, headers=self.headers)
        return httpx.Response(self.status, text=self.text or "", headers=self.headers)


RATE_LIMITED = Answer(429, json={"error": "rate limited"}, headers={"Retry-After": "7"})
SERVER_ERROR = Answer(503, text="Service Unavailable")


@dataclass(frozen=True)
class ProviderCase:
    provider: type[Provider[Any, Any]]
    credentials: dict[str, Any]
    message: Message
    method: str
    url: str
    success: Answer
    expected_message_id: str | None
    check_request: Callable[[httpx.Request], None]
    bad_credentials: Answer
    invalid_recipient: Answer | None
    #: A credentials field whose absence must be reported by name.
    required_credential: str
    settings: dict[str, Any] = field(default_factory=dict)
    rate_limited: Answer = RATE_LIMITED
    server_error: Answer = SERVER_ERROR
    #: Extra routes a send needs before the main one (an OAuth token exchange, say).
    extra_routes: Callable[[respx.MockRouter], None] | None = None
    #: Secrets derived from the credentials that must not leak either (a signed JWT, say).
    derived_secrets: tuple[str, ...] = ()


T = TypeVar("T")


@dataclass(frozen=True)
class FormPart:
    name: str
    filename: str | None
    content_type: str | None
    content: bytes


def form_parts(request: httpx.Request) -> list[FormPart]:
    """The parts of a ``multipart/form-data`` request body, in order."""
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary="), content_type
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.content)
    parts = []
    for part in parsed.iter_parts():
        payload = part.get_payload(decode=True)
        parts.append(
            FormPart(
                name=str(part.get_param("name", header="content-disposition")),
                filename=part.get_filename(),
                content_type=part["content-type"],
                content=payload if isinstance(payload, bytes) else b"",
            )
        )
    return parts


def form_fields(request: httpx.Request) -> dict[str, list[str]]:
    """The fields (the parts without a filename) of a ``multipart/form-data`` body, by name."""
    fields: dict[str, list[str]] = {}
    for part in form_parts(request):
        if part.filename is None:
            fields.setdefault(part.name, []).append(part.content.decode())
    return fields


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


class ProviderContract:
    """Subclass with ``case = ProviderCase(...)``; the tests below run against it."""

    case: ProviderCase

    def _send(self, answer: Answer | Exception) -> tuple[SendResult, list[httpx.Request]]:
        case = self.case
        provider = case.provider()
        credentials = provider.parse_credentials(case.credentials)
        settings = provider.parse_settings(case.settings)

        async def go() -> SendResult:
            async with httpx.AsyncClient(timeout=5.0) as client:
                return await provider.send(case.message, credentials, settings, client)

        with respx.mock(assert_all_called=False) as router:
            if case.extra_routes is not None:
                case.extra_routes(router)
            route = router.route(method=case.method, url=case.url)
            if isinstance(answer, Exception):
                route.side_effect = answer
            else:
                route.return_value = answer.response()
            try:
                result = run(go())
            finally:
                self._requests = [call.request for call in route.calls]
        return result, self._requests

    def _failure(self, answer: Answer | Exception) -> ProviderError:
        with pytest.raises(ProviderError) as caught:
            self._send(answer)
        assert self._requests, "the provider never called its documented endpoint"
        return caught.value

    def test_missing_credential_is_named(self) -> None:
        raw = dict(self.case.credentials)
        raw.pop(self.case.required_credential)
        with pytest.raises(ValidationError) as caught:
            self.case.provider.parse_credentials(raw)
        assert self.case.required_credential in str(caught.value)

    def test_success_builds_documented_request(self) -> None:
        result, requests = self._send(self.case.success)
        assert len(requests) == 1
        self.case.check_request(requests[0])
        assert result.provider_message_id == self.case.expected_message_id

    def test_bad_credentials_is_integration_error(self) -> None:
        error = self._failure(self.case.bad_credentials)
        assert type(error) is IntegrationError
        assert error.status_code == self.case.bad_credentials.status

    def test_invalid_recipient_is_recipient_error(self) -> None:
        if self.case.invalid_recipient is None:
            pytest.skip(f"{self.case.provider.name}'s API reports no distinct recipient error")
        error = self._failure(self.case.invalid_recipient)
        assert type(error) is RecipientError

    def test_rate_limited_is_retryable_with_retry_after(self) -> None:
        error = self._failure(self.case.rate_limited)
        assert isinstance(error, RetryableError)
        assert error.retry_after == 7.0

    def test_server_error_is_retryable(self) -> None:
        error = self._failure(self.case.server_error)
        assert isinstance(error, RetryableError)
        assert error.status_code == self.case.server_error.status

    def test_timeout_is_retryable(self) -> None:
        error = self._failure(httpx.ReadTimeout("timed out"))
        assert isinstance(error, RetryableError)
        assert error.status_code is None

    def test_connection_error_is_retryable(self) -> None:
        error = self._failure(httpx.ConnectError("refused"))
        assert isinstance(error, RetryableError)

    def test_no_secret_in_errors_reprs_or_logs(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        provider = self.case.provider
        credentials = provider.parse_credentials(self.case.credentials)
        secrets = [value for value in _secret_strings(self.case.credentials) if len(value) >= 6]
        secrets += list(self.case.derived_secrets)
        assert secrets, "the case must use recognisable secret values"
        seen: list[str] = [repr(credentials), str(credentials)]
        answers: list[Answer | Exception] = [
            self.case.bad_credentials,
            self.case.rate_limited,
            self.case.server_error,
            httpx.ConnectError("refused"),
        ]
        if self.case.invalid_recipient is not None:
            answers.append(self.case.invalid_recipient)
        for answer in answers:
            error = self._failure(answer)
            seen += [str(error), repr(error), repr(error.__cause__), repr(error.__context__)]
        seen += [record.getMessage() for record in caplog.records]
        for text in seen:
            for secret in secrets:
                assert secret not in text


def _secret_strings(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw] if raw.startswith(("sk-", "SECRET", "secret")) or "SECRET" in raw else []
    if isinstance(raw, dict):
        return [value for item in raw.values() for value in _secret_strings(item)]
    if isinstance(raw, list | tuple):
        return [value for item in raw for value in _secret_strings(item)]
    return []

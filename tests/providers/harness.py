"""One shared contract harness for HTTP providers.

A provider's test module declares a :class:`ProviderCase` (its documented endpoint, a check of the
request it must build, and the documented answers for each class of outcome) and subclasses
:class:`ProviderContract`; pytest runs the same table of tests for every provider:
validation, success with message id, bad credentials, invalid recipient, 429 with Retry-After,
5xx, a failure before sending (retryable) and after (ambiguous), the delivery's idempotency key
where the provider declares one, and redaction of every secret from errors and logs.

A module's own tests drive the same case through the same helpers, changing only what the test
is about (the answer, the message, the settings): :func:`send` (an :class:`Outcome`),
:func:`delivered` (a send that must succeed), :func:`failure` (one that must fail),
:func:`check` (a credentials check) and :func:`send_all` (several sends through one provider
instance, for token caches).
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
import respx
from pydantic import ValidationError

from providers.base import CheckResult, Message, Provider, SendResult
from providers.errors import (
    AmbiguousError,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)


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
class Refusal:
    """A documented answer refusing a send, and the error it must become."""

    answer: Answer
    error: type[ProviderError]
    #: The error's ``provider_code``, for answers that carry a code of their own.
    code: str | None = None

    def __str__(self) -> str:
        return f"{self.answer.status}-{self.code or 'no code'}-{self.error.__name__}"


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
    #: The provider's table of refusals: each becomes one ``test_documented_refusal``.
    refusals: tuple[Refusal, ...] = ()
    #: Where a request carries the idempotency key the API de-duplicates on: required when the
    #: provider declares ``supports_idempotency_key``, and only then.
    idempotency_key: Callable[[httpx.Request], str] | None = None


T = TypeVar("T")

#: What a mocked route answers: one answer, answers in turn, a transport error, or a handler.
Answers = (
    Answer
    | httpx.Response
    | Sequence[Answer | httpx.Response]
    | Exception
    | Callable[[httpx.Request], httpx.Response]
)


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


def answer_with(route: respx.Route, answers: Answers) -> respx.Route:
    """Make ``route`` answer ``answers``."""
    if isinstance(answers, Answer):
        route.return_value = answers.response()
    elif isinstance(answers, httpx.Response):
        route.return_value = answers
    elif isinstance(answers, Exception) or callable(answers):
        route.side_effect = answers
    else:
        route.side_effect = [
            item.response() if isinstance(item, Answer) else item for item in answers
        ]
    return route


@dataclass
class Outcome:
    """One send: its result or its error, and the requests the case's route received."""

    result: SendResult | None = None
    error: ProviderError | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    @property
    def value(self) -> SendResult | ProviderError:
        """The result, or the error."""
        return self.error if self.error is not None else self.sent

    @property
    def sent(self) -> SendResult:
        """The result; the error is raised, as the provider raised it."""
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    @property
    def request(self) -> httpx.Request:
        assert len(self.requests) == 1, f"expected one request, got {len(self.requests)}"
        return self.requests[0]


def send(
    case: ProviderCase,
    answers: Answers,
    *,
    message: Message | None = None,
    settings: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
    url: str | None = None,
    method: str | None = None,
    provider: Provider[Any, Any] | None = None,
) -> Outcome:
    """Send ``message`` (default: the case's) with ``answers`` at ``url`` (default: the case's).

    ``provider`` replaces ``case.provider()`` (a provider with a pinned clock, say).
    """
    provider = provider or case.provider()
    parsed_credentials = provider.parse_credentials(
        case.credentials if credentials is None else credentials
    )
    parsed_settings = provider.parse_settings(case.settings if settings is None else settings)

    async def go() -> SendResult:
        async with httpx.AsyncClient(timeout=5.0) as client:
            return await provider.send(
                message or case.message, parsed_credentials, parsed_settings, client
            )

    outcome = Outcome()
    with respx.mock(assert_all_called=False) as router:
        if case.extra_routes is not None:
            case.extra_routes(router)
        route = answer_with(
            router.route(method=method or case.method, url=url or case.url), answers
        )
        try:
            outcome.result = run(go())
        except ProviderError as error:
            outcome.error = error
        finally:
            outcome.requests = [call.request for call in route.calls]
    return outcome


def delivered(
    case: ProviderCase, answers: Answers, **overrides: Any
) -> tuple[SendResult, httpx.Request]:
    """A send that must succeed: its result and its one request (the error is raised)."""
    outcome = send(case, answers, **overrides)
    return outcome.sent, outcome.request


def failure(case: ProviderCase, answers: Answers, **overrides: Any) -> ProviderError:
    """The error a send answered with ``answers`` must fail with, after calling the endpoint."""
    outcome = send(case, answers, **overrides)
    assert outcome.requests, "the provider never called its documented endpoint"
    assert outcome.error is not None, f"the send succeeded: {outcome.result}"
    return outcome.error


def check(
    case: ProviderCase,
    answers: Answers,
    *,
    url: str,
    method: str = "GET",
    settings: dict[str, Any] | None = None,
) -> tuple[CheckResult, httpx.Request]:
    """Run the provider's ``check`` with ``answers`` at ``url``: its result and its one request."""
    provider = case.provider()

    async def go() -> CheckResult | None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            return await provider.check(
                provider.parse_credentials(case.credentials),
                provider.parse_settings(case.settings if settings is None else settings),
                client,
            )

    with respx.mock(assert_all_called=False) as router:
        if case.extra_routes is not None:
            case.extra_routes(router)
        route = answer_with(router.route(method=method, url=url), answers)
        result = run(go())
    assert result is not None, f"{case.provider.name} has no check"
    assert len(route.calls) == 1, f"expected one request, got {len(route.calls)}"
    return result, route.calls[0].request


class FakeClock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Runs:
    """Several sends through one provider instance: outcomes in order, and the routes."""

    outcomes: list[SendResult | ProviderError]
    route: respx.Route
    routes: dict[str, respx.Route]


def send_all(
    case: ProviderCase,
    messages: Sequence[Message],
    answers: Answers,
    *,
    provider: Provider[Any, Any],
    routes: Mapping[str, Answers] | None = None,
    settings: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
    url: str | None = None,
    clock: FakeClock | None = None,
    advance: float = 0.0,
) -> Runs:
    """Send each message in turn (one event loop per send, as a worker does) with ``answers``
    at the case's URL and ``routes`` (URL to answers) beside it; move ``clock`` on by
    ``advance`` seconds after each send."""
    parsed_credentials = provider.parse_credentials(
        case.credentials if credentials is None else credentials
    )
    parsed_settings = provider.parse_settings(case.settings if settings is None else settings)
    outcomes: list[SendResult | ProviderError] = []

    async def go(message: Message) -> SendResult:
        async with httpx.AsyncClient(timeout=5.0) as client:
            return await provider.send(message, parsed_credentials, parsed_settings, client)

    with respx.mock(assert_all_called=False) as router:
        extra = {
            extra_url: answer_with(router.route(method="POST", url=extra_url), extra_answers)
            for extra_url, extra_answers in (routes or {}).items()
        }
        route = answer_with(router.route(method=case.method, url=url or case.url), answers)
        for message in messages:
            try:
                outcomes.append(run(go(message)))
            except ProviderError as error:
                outcomes.append(error)
            if clock is not None:
                clock.now += advance
    return Runs(outcomes, route, extra)


class ProviderContract:
    """Subclass with ``case = ProviderCase(...)``; the tests below run against it."""

    case: ProviderCase

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.case.refusals:
            # A function of its own per class: marks accumulate on a shared one.
            def test_documented_refusal(self: ProviderContract, refusal: Refusal) -> None:
                _documented_refusal(self, refusal)

            cls.test_documented_refusal = pytest.mark.parametrize(  # type: ignore[attr-defined]
                "refusal", cls.case.refusals, ids=str
            )(test_documented_refusal)

    def test_missing_credential_is_named(self) -> None:
        raw = dict(self.case.credentials)
        raw.pop(self.case.required_credential)
        with pytest.raises(ValidationError) as caught:
            self.case.provider.parse_credentials(raw)
        assert self.case.required_credential in str(caught.value)

    def test_success_builds_documented_request(self) -> None:
        outcome = send(self.case, self.case.success)
        result = outcome.sent
        assert len(outcome.requests) == 1
        self.case.check_request(outcome.requests[0])
        assert result.provider_message_id == self.case.expected_message_id

    def test_bad_credentials_is_integration_error(self) -> None:
        error = failure(self.case, self.case.bad_credentials)
        assert type(error) is IntegrationError
        assert error.status_code == self.case.bad_credentials.status

    def test_invalid_recipient_is_recipient_error(self) -> None:
        if self.case.invalid_recipient is None:
            pytest.skip(f"{self.case.provider.name}'s API reports no distinct recipient error")
        error = failure(self.case, self.case.invalid_recipient)
        assert isinstance(error, RecipientError)

    def test_rate_limited_is_retryable_with_retry_after(self) -> None:
        error = failure(self.case, self.case.rate_limited)
        assert isinstance(error, RetryableError)
        assert error.retry_after == 7.0

    def test_server_error_is_retryable(self) -> None:
        error = failure(self.case, self.case.server_error)
        assert isinstance(error, RetryableError)
        assert error.status_code == self.case.server_error.status

    @pytest.mark.parametrize(
        "transport_error",
        [httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("server disconnected")],
        ids=type,
    )
    def test_no_answer_after_sending_is_ambiguous(self, transport_error: Exception) -> None:
        error = failure(self.case, transport_error)
        assert type(error) is AmbiguousError
        assert error.status_code is None
        assert "may have reached the provider" in error.reason

    @pytest.mark.parametrize(
        "transport_error",
        [httpx.ConnectError("refused"), httpx.ConnectTimeout("timed out")],
        ids=type,
    )
    def test_a_failure_before_sending_is_retryable_not_ambiguous(
        self, transport_error: Exception
    ) -> None:
        error = failure(self.case, transport_error)
        assert type(error) is RetryableError
        assert error.reason.startswith("not sent: ")

    def test_the_deliverys_idempotency_key_is_sent_the_same_on_every_retry(self) -> None:
        read_key = self.case.idempotency_key
        assert (read_key is not None) == self.case.provider.supports_idempotency_key
        if read_key is None:
            return
        first, retried = (send(self.case, self.case.success).request for _ in range(2))
        other_delivery = self.case.message.model_copy(update={"delivery_id": "another-delivery"})
        # Matched without the query: the key may be a query parameter (Google Chat's).
        anywhere = str(httpx.URL(self.case.url).copy_with(query=None))
        other = send(self.case, self.case.success, message=other_delivery, url=anywhere).request
        assert read_key(first) == read_key(retried)
        assert read_key(first) != read_key(other)

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
            error = failure(self.case, answer)
            seen += [str(error), repr(error), repr(error.__cause__), repr(error.__context__)]
        seen += [record.getMessage() for record in caplog.records]
        for text in seen:
            for secret in secrets:
                assert secret not in text


def _documented_refusal(self: ProviderContract, refusal: Refusal) -> None:
    """One row of the case's ``refusals``: one request, then exactly that error."""
    outcome = send(self.case, refusal.answer)
    assert len(outcome.requests) == 1
    error = outcome.value
    assert type(error) is refusal.error
    assert isinstance(error, ProviderError)
    assert error.status_code == refusal.answer.status
    if refusal.code is not None:
        assert error.provider_code == refusal.code


def _secret_strings(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw] if raw.startswith(("sk-", "SECRET", "secret")) or "SECRET" in raw else []
    if isinstance(raw, dict):
        return [value for item in raw.values() for value in _secret_strings(item)]
    if isinstance(raw, list | tuple):
        return [value for item in raw for value in _secret_strings(item)]
    return []

"""Fetch steps' functional core: config validation (named down to the field), the request
rendered, the answer parsed and merged, the request made against a local server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dispatcher import ActionArgumentsError
from dispatcher.producer import validate_action
from dispatcher.runtime.url_guard import DestinationGuard
from dispatcher.sending.fetch import (
    FetchConfig,
    FetchRequest,
    described_url,
    merge_answer,
    parse_answer,
    perform,
    render_request,
)
from dispatcher.sending.rendering import RenderError, TemplateRenderer
from providers.errors import IntegrationError, RetryableError
from providers.webhook import verify_signature

EMAIL = {"kind": "email", "template": {"body": "b"}}


def refused(config: dict[str, Any], **step: Any) -> dict[str, str]:
    steps = [EMAIL, {"kind": "fetch", "config": config, **step}]
    with pytest.raises(ActionArgumentsError) as caught:
        validate_action("create_workflow", {"key": "k", "name": "n", "steps": steps}, uuid.uuid4())
    return {item["field"]: item["message"] for item in caught.value.errors}


URL = "https://api.example.com/users/{{ subscriber.subscriber_id }}"


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        ({}, "steps.1.config.url", "Field required"),
        ({"url": "ftp://example.com/x"}, "steps.1.config.url",
         "an http:// or https:// URL (templates may fill in what follows)"),
        ({"url": "{{ payload.url }}"}, "steps.1.config.url",
         "an http:// or https:// URL (templates may fill in what follows)"),
        ({"url": "https://x/{{ payload.id"}, "steps.1.config.url",
         "template syntax error on line 1: unexpected end of template, expected 'end of print "
         "statement'."),
        ({"url": URL, "method": "PUT"}, "steps.1.config.method", "Input should be 'GET' or 'POST'"),
        ({"url": URL, "body": {"a": 1}}, "steps.1.config.body", "only a POST sends a body"),
        ({"url": URL, "method": "POST", "body": {"a": ["{% if %}"]}}, "steps.1.config.body.a.0",
         "template syntax error on line 1: Expected an expression, got 'end of statement block'"),
        ({"url": URL, "timeout_seconds": 31}, "steps.1.config.timeout_seconds",
         "Input should be less than or equal to 30"),
        ({"url": URL, "timeout_seconds": 0}, "steps.1.config.timeout_seconds",
         "Input should be greater than 0"),
        ({"url": URL, "max_bytes": 2_000_000}, "steps.1.config.max_bytes",
         "Input should be less than or equal to 1048576"),
        ({"url": URL, "headers": {"Host": "evil"}}, "steps.1.config.headers",
         "header 'Host' is set by the dispatcher"),
        ({"url": URL, "headers": {"Bad Name": "x"}}, "steps.1.config.headers",
         "'Bad Name' is not a valid header name"),
        ({"url": URL, "headers": {"X-Token": "{{ payload.t"}}, "steps.1.config.headers.X-Token",
         "template syntax error on line 1: unexpected end of template, expected 'end of print "
         "statement'."),
        ({"url": URL, "merge_key": "9lives"}, "steps.1.config.merge_key",
         "a payload key: letters, digits and _, not starting with a digit"),
        ({"url": URL, "retries": 3}, "steps.1.config.retries", "Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_bad_config_is_named_down_to_its_field(
    config: dict[str, Any], field: str, message: str
) -> None:
    assert refused(config) == {field: message}


def test_a_fetch_step_has_no_template() -> None:
    assert refused({"url": URL}, template={"body": "x"}) == {
        "steps.1.template": "a fetch step has no templates: its url, headers and body are "
        "templates in config"
    }


def test_a_fetch_before_a_digest_is_refused() -> None:
    steps = [{"kind": "fetch", "config": {"url": URL}},
             {"kind": "digest", "config": {"window_seconds": 60}}, EMAIL]  # fmt: skip
    with pytest.raises(ActionArgumentsError) as caught:
        validate_action("create_workflow", {"key": "k", "name": "n", "steps": steps}, uuid.uuid4())
    [error] = caught.value.errors
    assert error["field"] == "steps"
    assert "steps.0: a fetch step before a digest step is not supported" in error["message"]


def test_a_good_config_is_stored_as_given_with_its_defaults_applied_at_send() -> None:
    config = {"url": URL, "method": "post", "body": {"id": "{{ payload.id }}"},
              "headers": {"X-Api-Key": "k"}, "merge_key": "account"}  # fmt: skip
    _, arguments = validate_action(
        "create_workflow",
        {"key": "k", "name": "n", "steps": [{"kind": "fetch", "config": config}, EMAIL]},
        uuid.uuid4(),
    )
    assert arguments["steps"][0]["config"] == config
    parsed = FetchConfig.model_validate(config)
    assert (parsed.method, parsed.timeout_seconds, parsed.max_bytes) == ("POST", 5.0, 65536)


CONTEXT = {"payload": {"id": 42, "name": "Ada"}, "subscriber": {"subscriber_id": "ada"},
           "actor": {}}  # fmt: skip


@pytest.mark.parametrize(
    ("config", "method", "url", "headers", "body"),
    [
        ({"url": URL}, "GET", "https://api.example.com/users/ada", (), None),
        ({"url": URL, "method": "POST"}, "POST", "https://api.example.com/users/ada", (),
         {"id": 42, "name": "Ada"}),
        ({"url": URL, "method": "POST", "body": {"user": "{{ payload.name }}", "n": [1, "{{ 1+1 }}"],
                                                 "flag": True}},
         "POST", "https://api.example.com/users/ada", (), {"user": "Ada", "n": [1, "2"],
                                                           "flag": True}),
        ({"url": URL, "headers": {"X-User": "{{ subscriber.subscriber_id }}"}}, "GET",
         "https://api.example.com/users/ada", (("X-User", "ada"),), None),
    ],
)  # fmt: skip
def test_the_request_is_rendered_from_payload_and_subscriber(
    config: dict[str, Any],
    method: str,
    url: str,
    headers: tuple[tuple[str, str], ...],
    body: Any,
) -> None:
    request = render_request(FetchConfig.model_validate(config), TemplateRenderer(), CONTEXT)
    assert (request.method, request.url, request.headers) == (method, url, headers)
    assert (json.loads(request.body) if request.body is not None else None) == body


def test_a_template_that_does_not_render_names_its_place() -> None:
    config = FetchConfig.model_validate({"url": "https://x/{{ payload.id.nope.deeper }}"})
    with pytest.raises(RenderError, match=r"^config\.url: "):
        render_request(config, TemplateRenderer(), CONTEXT)


def test_the_request_repr_and_the_described_url_keep_no_query_or_header() -> None:
    request = FetchRequest("GET", "https://u:pw@api.example.com:8443/a/b?token=SECRET#frag",
                           (("Authorization", "Bearer SECRET"),), None, 5.0, 100, None)  # fmt: skip
    assert repr(request) == "FetchRequest(GET https://api.example.com:8443/a/b)"
    assert "SECRET" not in repr(request)
    assert described_url(request.url) == "https://api.example.com:8443/a/b"


@pytest.mark.parametrize(
    ("payload", "answer", "merge_key", "merged"),
    [
        ({"a": 1}, {"b": 2}, None, {"a": 1, "b": 2}),
        ({"a": 1, "b": {"x": 1}}, {"b": {"y": 2}}, None, {"a": 1, "b": {"y": 2}}),
        ({"a": 1}, {"b": 2}, "user", {"a": 1, "user": {"b": 2}}),
        ({"a": 1}, [1, 2], "items", {"a": 1, "items": [1, 2]}),
        ({"a": 1}, None, "gone", {"a": 1, "gone": None}),
        ({"user": "old"}, "new", "user", {"user": "new"}),
    ],
)
def test_the_answer_is_merged(
    payload: dict[str, Any], answer: Any, merge_key: str | None, merged: dict[str, Any]
) -> None:
    assert merge_answer(payload, answer, merge_key) == merged
    assert payload == dict(payload)  # not changed in place


@pytest.mark.parametrize(
    ("body", "merge_key", "problem"),
    [
        (b"<html>", None, "the answer is not JSON"),
        (b"[1]", None, "the answer is a JSON array, not an object; set merge_key to keep it"),
        (b'"s"', None, "the answer is a JSON string, not an object; set merge_key to keep it"),
        (b"3", None, "the answer is a JSON number, not an object; set merge_key to keep it"),
        (b"null", None, "the answer is a JSON null, not an object; set merge_key to keep it"),
        (b"\xff", "k", "the answer is not JSON"),
    ],
)
def test_an_answer_that_cannot_be_merged_is_a_permanent_error(
    body: bytes, merge_key: str | None, problem: str
) -> None:
    with pytest.raises(IntegrationError) as caught:
        parse_answer(body, merge_key)
    assert caught.value.reason == problem


def test_an_answer_under_a_merge_key_may_be_any_json() -> None:
    assert parse_answer(b"[1, 2]", "items").value == [1, 2]
    assert parse_answer(b'{"a": 1}', None).size == len(b'{"a": 1}')


Handler = Callable[[httpx.Request], httpx.Response]


def run(handler: Handler, request: FetchRequest, *, allow: tuple[str, ...] = ()) -> Any:
    async def call() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await perform(request, client, DestinationGuard(allow))

    return asyncio.run(call())


def request_to(url: str = "http://203.0.113.9/x", max_bytes: int = 1000) -> FetchRequest:
    return FetchRequest("GET", url, (("X-Key", "SECRET"),), None, 2.0, max_bytes, None)


ALLOWED = ("203.0.113.9",)  # a documentation address, allowed like an operator would


def test_a_2xx_json_answer_is_returned_with_its_status() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"ok": 1})

    fetched, status = run(handler, request_to(), allow=ALLOWED)
    assert (fetched.value, status) == ({"ok": 1}, 201)
    assert seen[0].headers["x-key"] == "SECRET"
    assert seen[0].headers["accept-encoding"] == "identity"


@pytest.mark.parametrize(
    ("response", "error_class", "reason", "retry_after"),
    [
        (httpx.Response(503), RetryableError, "HTTP 503 from the fetch URL", None),
        (httpx.Response(429, headers={"Retry-After": "7"}), RetryableError,
         "HTTP 429 from the fetch URL", 7.0),
        (httpx.Response(404, text="secret page echoing SECRET"), IntegrationError,
         "HTTP 404 from the fetch URL", None),
        (httpx.Response(200, content=b"x" * 1001), IntegrationError,
         "answer larger than 1000 bytes", None),
    ],
)  # fmt: skip
def test_a_failed_answer_is_classified_like_a_provider_answer(
    response: httpx.Response, error_class: type[Exception], reason: str, retry_after: Any
) -> None:
    with pytest.raises(error_class) as caught:
        run(lambda _request: response, request_to(), allow=ALLOWED)
    error = caught.value
    assert type(error) is error_class or isinstance(error, error_class)
    assert getattr(error, "reason", None) == reason
    assert getattr(error, "retry_after", None) == retry_after


def test_a_connection_error_is_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(RetryableError, match="not sent"):
        run(handler, request_to(), allow=ALLOWED)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/x", "http://169.254.169.254/latest", "http://[::1]/x",
     "http://2130706433/x"],
)  # fmt: skip
def test_the_guard_refuses_a_private_url_before_any_request(url: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may be made")

    with pytest.raises(IntegrationError, match=r"^fetch: refused by the URL guard: host "):
        run(handler, request_to(url))


def test_a_signed_request_verifies_with_the_webhook_scheme() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    config = FetchConfig.model_validate(
        {"url": "http://203.0.113.9/x", "method": "POST", "sign": True}
    )
    request = render_request(
        config, TemplateRenderer(), CONTEXT, idempotency_key="d-1",
        signing_secret=SecretStr("whsec-SECRET"),
    )  # fmt: skip
    assert "whsec" not in repr(request)

    async def call() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await perform(request, client, DestinationGuard(ALLOWED), clock=lambda: 1000.0)

    asyncio.run(call())
    sent = seen[0]
    assert sent.headers["idempotency-key"] == "d-1"
    assert sent.headers["x-dispatcher-timestamp"] == "1000"
    assert verify_signature(
        "whsec-SECRET", "1000", sent.content, sent.headers["x-dispatcher-signature"], now=1000
    )
    assert not verify_signature(
        "other", "1000", sent.content, sent.headers["x-dispatcher-signature"], now=1000
    )


def test_an_unsigned_request_carries_no_signature() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    run(handler, request_to(), allow=ALLOWED)
    assert "x-dispatcher-signature" not in seen[0].headers


@pytest.mark.parametrize("name", ["X-Dispatcher-Signature", "Idempotency-Key"])
def test_a_step_may_not_set_the_signature_headers(name: str) -> None:
    assert refused({"url": URL, "headers": {name: "forged"}}) == {
        "steps.1.config.headers": f"header {name!r} is set by the dispatcher"
    }

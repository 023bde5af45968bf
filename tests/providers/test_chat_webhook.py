import logging
import re

import httpx
import pytest
from pydantic import SecretStr

from providers.base import ChannelType, Message, Recipient
from providers.chat_webhook import (
    Destination,
    chat_destination,
    compose_text,
    host_allowed,
    redact,
    response_detail,
    seconds,
    url_problem,
    webhook_destination,
    webhook_failure,
    with_query,
)
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.http import origin

HOSTS = ("hooks.example.com",)
PATH = re.compile(r"/services/[a-z0-9]+")
CONFIGURED = SecretStr("https://hooks.example.com/services/SECRETconfiguredtoken")


def message(**to: str) -> Message:
    return Message(
        delivery_id="d-1",
        channel=ChannelType.CHAT,
        to=Recipient(**to),
        title="Deploy",
        body="done",
    )


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("hooks.example.com", True),
        ("HOOKS.EXAMPLE.COM.", True),
        ("eu.hooks.example.com", True),
        ("hooks.example.com.evil.net", False),
        ("evilhooks.example.com", False),
        ("example.com", False),
    ],
)
def test_host_allowed_takes_the_host_and_its_subdomains_only(host: str, allowed: bool) -> None:
    assert host_allowed(host, HOSTS) is allowed


def test_empty_allowed_host_allows_nothing() -> None:
    assert not host_allowed("anything.com", ("",))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://hooks.example.com/services/abc", None),
        ("https://hooks.example.com:443/services/abc", None),
        ("http://hooks.example.com/services/abc", "must be an https URL"),
        ("https://user:pw@hooks.example.com/services/abc", "must not carry a user name"),
        ("https://evil.net\\@hooks.example.com/services/abc", "must not carry a user name"),
        ("https://hooks.example.com:8443/services/abc", "must use the default https port"),
        ("https://hooks.example.com.evil.net/services/abc", "must be on hooks.example.com"),
        ("https://127.0.0.1/services/abc", "must be on hooks.example.com"),
        ("https://hooks.example.com/api/other", "does not have the webhook path"),
        ("https://hooks.example.com/services/abc/../../admin", "does not have the webhook path"),
        ("not a url at all", "must be an https URL"),
        ("https://xn--hooks-slack.com/", "is not a URL"),
    ],
)
def test_url_problem(url: str, problem: str | None) -> None:
    found = url_problem(url, allowed_hosts=HOSTS, path=PATH)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem)
        assert url not in found


def test_url_problem_with_no_allowed_host_names_the_rule() -> None:
    assert url_problem("https://a.example/", allowed_hosts=()) == "must be on an allowed host"


def test_destination_is_the_integrations_url_without_a_subscriber_url() -> None:
    destination = webhook_destination("p", message(), CONFIGURED, HOSTS, path=PATH)
    assert destination == Destination(CONFIGURED.get_secret_value(), from_recipient=False)
    assert "SECRET" not in repr(destination)


def test_destination_prefers_the_subscribers_allowed_url() -> None:
    own = "https://hooks.example.com/services/subscriber1"
    destination = webhook_destination("p", message(webhook_url=own), CONFIGURED, HOSTS, path=PATH)
    assert destination.url == own
    assert destination.from_recipient


def test_subscriber_url_elsewhere_is_a_recipient_error_that_does_not_quote_it() -> None:
    evil = "https://169.254.169.254/latest/meta-data/SECRET"
    with pytest.raises(RecipientError) as caught:
        webhook_destination("p", message(webhook_url=evil), CONFIGURED, HOSTS, path=PATH)
    assert "SECRET" not in str(caught.value)
    assert "169.254" not in str(caught.value)


def test_no_url_at_all_is_an_integration_error() -> None:
    with pytest.raises(IntegrationError):
        webhook_destination("p", message(), None, HOSTS)
    with pytest.raises(IntegrationError):
        webhook_destination("p", message(), SecretStr(""), HOSTS)


def test_with_query_keeps_the_urls_own_query() -> None:
    url = with_query("https://x.example/v1/m?key=K&token=T", {"requestId": "r 1"})
    assert httpx.URL(url).params == httpx.QueryParams(
        {"key": "K", "token": "T", "requestId": "r 1"}
    )
    assert httpx.URL(with_query("https://x.example/?wait=false", {"wait": "true"})).params == (
        httpx.QueryParams({"wait": "true"})
    )


def test_redact_removes_url_long_path_segments_and_query_values_keeps_short_ones() -> None:
    url = "https://chat.example.com/v1/spaces/AAAA/messages?key=AIzaSyLongApiKey123&token=tok"
    text = f"failed {url}; key AIzaSyLongApiKey123; space AAAA; messages; token tok"
    redacted = redact(text, url)
    assert url not in redacted
    assert "AIzaSyLongApiKey123" not in redacted
    assert "space AAAA" in redacted
    assert "token tok" in redacted  # too short to be told apart from ordinary words


def test_redact_removes_explicit_secrets_of_any_length() -> None:
    assert redact("token 12:abc leaked", secrets=["12:abc"]) == "token [redacted] leaked"


def test_response_detail_redacts_before_truncating() -> None:
    secret = "S" * 40
    url = f"https://hooks.example.com/services/{secret}"
    body = "x" * 280 + " " + secret
    detail = response_detail(httpx.Response(400, text=body), url)
    assert "SSSSSSSS" not in detail
    assert len(detail) <= 300


def test_response_detail_is_one_line() -> None:
    assert response_detail(httpx.Response(400, text="a\n  b\tc")) == "a b c"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, 7.0), (1.5, 1.5), ("3", 3.0), (-2, 0.0), (True, None), ("soon", None), (None, None)],
)
def test_seconds(value: object, expected: float | None) -> None:
    assert seconds(value) == expected


def test_seconds_rejects_nan_and_infinity() -> None:
    assert seconds(float("nan")) is None
    assert seconds("inf") is None


OWN = Destination("https://hooks.example.com/services/own", from_recipient=False)
THEIRS = Destination("https://hooks.example.com/services/theirs", from_recipient=True)


@pytest.mark.parametrize(
    ("status", "destination", "expected"),
    [
        (404, OWN, IntegrationError),
        (404, THEIRS, RecipientError),
        (410, THEIRS, RecipientError),
        (403, OWN, IntegrationError),
        (400, THEIRS, IntegrationError),
        (429, THEIRS, RetryableError),
        (502, OWN, RetryableError),
    ],
)
def test_webhook_failure_classes(
    status: int, destination: Destination, expected: type[Exception]
) -> None:
    error = webhook_failure(
        "p", httpx.Response(status), destination=destination, detail="boom", code="c"
    )
    assert type(error) is expected
    assert error.status_code == status
    assert error.provider_code == "c"
    assert ("subscriber's webhook" in error.reason) is destination.from_recipient


def test_webhook_failure_prefers_the_bodys_retry_after_over_the_header() -> None:
    response = httpx.Response(429, headers={"Retry-After": "9"})
    error = webhook_failure("p", response, destination=OWN, detail="", retry_after=1.25)
    assert isinstance(error, RetryableError)
    assert error.retry_after == 1.25
    header_only = webhook_failure("p", response, destination=OWN, detail="")
    assert isinstance(header_only, RetryableError)
    assert header_only.retry_after == 9.0


def test_chat_destination() -> None:
    assert chat_destination("p", message(chat_id="C1"), "C0", "default") == ("C1", True)
    assert chat_destination("p", message(), "C0", "default") == ("C0", False)
    with pytest.raises(IntegrationError, match="default_channel"):
        chat_destination("p", message(), None, "default_channel")


def test_compose_text() -> None:
    bold = "*{}*".format
    assert compose_text(message(), bold) == "*Deploy*\ndone"
    no_title = Message(delivery_id="d", channel=ChannelType.CHAT, to=Recipient(), body="b")
    assert compose_text(no_title, bold) == "b"
    subject_only = no_title.model_copy(update={"subject": "S", "body": ""})
    assert compose_text(subject_only, bold) == "*S*"


def test_httpx_request_log_lines_keep_only_the_origin(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    secret_url = "https://hooks.example.com/services/SECRETtokeninpath?token=SECRETquery"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="ok")

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        client.post(secret_url)
    lines = [record.getMessage() for record in caplog.records if record.name == "httpx"]
    assert lines == ['HTTP Request: POST https://hooks.example.com/[redacted] "HTTP/1.1 200 OK"']


def test_origin_of_a_bare_host_has_no_redaction_marker() -> None:
    assert origin("https://api.example.com:8443") == "https://api.example.com:8443"

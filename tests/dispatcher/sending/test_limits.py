"""Declared limits are enforced before any request: refused, truncated, or the text part only."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from dispatcher.runtime.http import SendingRuntime
from dispatcher.sending.limits import ELLIPSIS, LimitExceededError, fit
from models import AttemptOutcome, DeliveryStatus
from providers.base import Message, Recipient
from providers.discord import DiscordProvider
from providers.mattermost import MattermostProvider
from providers.plivo import PlivoProvider
from providers.registry import AnyProvider
from providers.sendgrid import SendGridProvider
from providers.slack import SlackProvider
from providers.slack_webhook import SlackWebhookProvider
from providers.telegram import TelegramProvider
from providers.twilio import TwilioProvider
from tests.dispatcher.sending.support import LIMITED_PROVIDERS, candidate, job, sender, sent_by


@pytest.fixture
def runtime() -> Iterator[SendingRuntime]:
    runtime = SendingRuntime(timeout=5.0, max_connections=10, url_allowlist=())
    yield runtime
    runtime.close()


@pytest.fixture(autouse=True)
def limited_providers(register_provider: Callable[..., None]) -> None:
    register_provider(*LIMITED_PROVIDERS)


def message(body: str, html: str | None = None) -> Message:
    return Message(delivery_id="d-1", channel="sms", to=Recipient(phone="+1"), body=body, html=html)


@pytest.mark.parametrize(
    ("provider", "limit"),
    [
        (TwilioProvider, 1600),
        (PlivoProvider, 1600),
        (DiscordProvider, 2000),
        (TelegramProvider, 4096),
    ],
)
def test_a_body_over_a_limit_the_api_rejects_is_refused(
    provider: type[AnyProvider], limit: int
) -> None:
    assert fit(provider, message("x" * limit)).body == "x" * limit
    with pytest.raises(LimitExceededError, match=f"body of {limit + 1} characters exceeds {limit}"):
        fit(provider, message("x" * (limit + 1)))


@pytest.mark.parametrize("provider", [SlackProvider, SlackWebhookProvider])
def test_a_body_over_a_limit_the_api_truncates_is_cut_first(provider: type[AnyProvider]) -> None:
    body = fit(provider, message("x" * 40_001)).body
    assert len(body) == 40_000
    assert body.endswith(ELLIPSIS)


def test_a_body_the_api_splits_itself_is_sent_whole() -> None:
    long = "x" * 20_000
    assert fit(MattermostProvider, message(long)).body == long


def test_the_html_part_reaches_only_providers_that_send_it() -> None:
    both = message("text", html="<p>text</p>")
    assert fit(TwilioProvider, both).html is None
    assert fit(TwilioProvider, both).body == "text"
    assert fit(SendGridProvider, both).html == "<p>text</p>"


def test_a_body_no_integration_takes_fails_with_the_reason_and_sends_nothing(
    runtime: SendingRuntime,
) -> None:
    work = job([candidate("test_short_text")], body="eleven char")
    outcomes = runtime.run(sender(runtime).send_all([work]))
    outcome = outcomes[work.delivery_id]
    assert outcome.status is DeliveryStatus.FAILED
    assert outcome.reason == "test_short_text: body of 11 characters exceeds 10"
    assert outcome.attempts == []
    assert sent_by(runtime, "test_short_text") == []


def test_too_many_attachments_fail_with_the_reason_and_send_nothing(
    runtime: SendingRuntime,
) -> None:
    work = job([candidate("test_short_text")], attachments=2)
    outcome = runtime.run(sender(runtime).send_all([work]))[work.delivery_id]
    assert outcome.status is DeliveryStatus.FAILED
    assert outcome.reason == "test_short_text: 2 attachments exceed 1"
    assert outcome.attempts == []
    assert sent_by(runtime, "test_short_text") == []


def test_the_next_integration_whose_limits_fit_sends_it(runtime: SendingRuntime) -> None:
    small, large = candidate("test_short_text"), candidate("test_roomy")
    work = job([small, large], body="a body of 23 characters", attachments=2)
    outcome = runtime.run(sender(runtime).send_all([work]))[work.delivery_id]
    assert outcome.status is DeliveryStatus.SENT
    assert outcome.integration_id == large.integration_id
    assert [a.outcome for a in outcome.attempts] == [AttemptOutcome.SENT]
    assert sent_by(runtime, "test_short_text") == []
    [handed] = sent_by(runtime, "test_roomy")
    assert handed.body == "a body of 23 characters"


def test_providers_are_handed_the_fitted_message(runtime: SendingRuntime) -> None:
    work = job([candidate("test_truncating")], body="a body of 23 characters", html="<b>hi</b>")
    outcome = runtime.run(sender(runtime).send_all([work]))[work.delivery_id]
    assert outcome.status is DeliveryStatus.SENT
    [handed] = sent_by(runtime, "test_truncating")
    assert handed.body == "a body of" + ELLIPSIS
    assert handed.html is None

import asyncio
from collections.abc import Callable

import pytest

from providers.base import SendResult
from providers.errors import (
    AmbiguousError,
    ExpiredTokenError,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.push_fanout import fold_outcomes, send_to_each_token
from tests.providers.harness import run

Outcome = SendResult | ProviderError


def _fan_out(
    tokens: tuple[str, ...], outcome: Callable[[str], Outcome], max_concurrency: int = 10
) -> tuple[SendResult | ProviderError, list[str]]:
    sent: list[str] = []

    async def send_one(token: str) -> SendResult:
        sent.append(token)
        await asyncio.sleep(0)
        result = outcome(token)
        if isinstance(result, ProviderError):
            raise result
        return result

    try:
        folded: SendResult | ProviderError = run(
            send_to_each_token("push", tokens, send_one, max_concurrency=max_concurrency)
        )
    except ProviderError as exc:
        folded = exc
    return folded, sent


def _ok(token: str) -> SendResult:
    return SendResult(provider_message_id=f"id-{token}", status_code=200)


def _unregistered(token: str) -> RecipientError:
    return RecipientError("push", "unregistered", status_code=410, provider_code="Unregistered")


def test_no_token_is_a_recipient_error_without_any_send() -> None:
    folded, sent = _fan_out(("", ""), _ok)
    assert type(folded) is RecipientError
    assert sent == []


def test_tokens_are_deduplicated_and_ids_kept_in_token_order() -> None:
    folded, sent = _fan_out(("a", "b", "a", "c"), _ok)
    assert sorted(sent) == ["a", "b", "c"]
    assert folded == SendResult(provider_message_id="id-a,id-b,id-c", status_code=200)


def test_single_token_failure_is_raised_unchanged() -> None:
    error = RetryableError("push", "busy", status_code=503, retry_after=3.0)
    folded, _ = _fan_out(("a",), lambda token: error)
    assert folded is error


def test_partial_success_is_a_success_without_the_failed_ids() -> None:
    folded, _ = _fan_out(
        ("a", "b"), lambda token: _ok(token) if token == "b" else _unregistered(token)
    )
    assert folded == SendResult(provider_message_id="id-b", status_code=200)


def test_all_rejected_is_one_recipient_error_naming_the_codes() -> None:
    folded, _ = _fan_out(("a", "b", "c"), _unregistered)
    assert type(folded) is RecipientError
    assert "all 3 device tokens were rejected (Unregistered)" in str(folded)
    assert folded.status_code == 410


def test_an_integration_error_wins_over_the_others() -> None:
    integration = IntegrationError("push", "bad key", status_code=403)
    outcomes: dict[str, Outcome] = {
        "a": _unregistered("a"),
        "b": RetryableError("push", "busy", retry_after=9.0),
        "c": integration,
    }
    folded, _ = _fan_out(("a", "b", "c"), outcomes.__getitem__)
    assert folded is integration


def test_retryable_wins_over_recipient_with_the_longest_retry_after() -> None:
    longest = RetryableError("push", "busy", retry_after=30.0)
    outcomes: dict[str, Outcome] = {
        "a": RetryableError("push", "busy", retry_after=5.0),
        "b": longest,
        "c": _unregistered("c"),
    }
    folded, _ = _fan_out(("a", "b", "c"), outcomes.__getitem__)
    assert folded is longest


def test_a_token_whose_request_may_have_been_sent_makes_the_whole_send_ambiguous() -> None:
    lost = AmbiguousError("push", "read timeout (ReadTimeout)")
    outcomes: dict[str, Outcome] = {
        "a": RetryableError("push", "busy", retry_after=30.0),
        "b": lost,
        "c": _unregistered("c"),
    }
    folded, _ = _fan_out(("a", "b", "c"), outcomes.__getitem__)
    assert folded is lost


def test_concurrency_is_bounded() -> None:
    active = 0
    peak = 0

    async def send_one(token: str) -> SendResult:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.001)
        active -= 1
        return _ok(token)

    tokens = tuple(f"t{index}" for index in range(12))
    result = run(send_to_each_token("push", tokens, send_one, max_concurrency=3))
    assert peak == 3
    assert result.provider_message_id == ",".join(f"id-{token}" for token in tokens)


def test_an_unclassified_exception_propagates() -> None:
    async def send_one(token: str) -> SendResult:
        if token == "b":
            raise KeyError("bug")
        return _ok(token)

    with pytest.raises(KeyError):
        run(send_to_each_token("push", ("a", "b"), send_one))


def test_fold_outcomes_of_a_batch_api() -> None:
    assert fold_outcomes("push", [_ok("a"), _unregistered("b")]) == SendResult(
        provider_message_id="id-a", status_code=200
    )
    with pytest.raises(RecipientError):
        fold_outcomes("push", [])


def _expired(token: str) -> ExpiredTokenError:
    return ExpiredTokenError("push", "subscription gone", status_code=410)


def test_expired_tokens_are_reported_beside_a_success() -> None:
    folded, _ = _fan_out(
        ("a", "b", "c"), lambda token: _ok(token) if token == "b" else _expired(token)
    )
    assert isinstance(folded, SendResult)
    assert folded.provider_message_id == "id-b"
    assert folded.expired_tokens == ("a", "c")


def test_expired_tokens_are_reported_on_the_folded_failure() -> None:
    folded, _ = _fan_out(
        ("a", "b", "c"),
        lambda token: _unregistered(token) if token == "b" else _expired(token),
    )
    assert isinstance(folded, RecipientError)
    assert folded.expired_tokens == ("a", "c")


def test_a_single_expired_token_is_named_on_its_error() -> None:
    folded, _ = _fan_out(("only",), _expired)
    assert isinstance(folded, ExpiredTokenError)
    assert folded.expired_tokens == ("only",)


def test_a_token_rejected_otherwise_is_not_reported_expired() -> None:
    folded, _ = _fan_out(
        ("a", "b"), lambda token: _ok(token) if token == "b" else _unregistered(token)
    )
    assert isinstance(folded, SendResult)
    assert folded.expired_tokens == ()

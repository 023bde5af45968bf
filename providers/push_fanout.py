"""Sending one push message to every device token of a recipient, and folding the outcomes.

APIs such as FCM HTTP v1 and APNs take a single device token per request: :func:`send_to_each_token`
sends to all tokens of a recipient concurrently (at most ``max_concurrency`` requests at once).
APIs that take a batch and answer per token (Expo's push tickets) build the per-token outcomes
themselves and call :func:`fold_outcomes`. Either way the outcomes fold into one:

* at least one token accepted: success; ``provider_message_id`` lists the accepted message ids,
  comma-separated, in token order (tokens that failed are left out);
* a single token that failed: its own error, unchanged;
* no token accepted: an :class:`IntegrationError` if any token got one (the credentials or
  configuration are wrong, whatever the tokens), else an :class:`AmbiguousError` if any token's
  request may have reached the provider (a resend may duplicate on that device), else a
  :class:`RetryableError` if any token got one (with the longest ``retry_after`` asked for), else
  a :class:`RecipientError` (every token is invalid or unregistered).

:class:`PerTokenHttpProvider` is the :class:`~providers.http_provider.HttpProvider` of such an
API: its request is built for a message holding one token (:func:`only_token`), and its ``send``
makes one of those requests per token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar, Generic

import httpx

from providers.base import CredentialsT, Message, SendResult, SettingsT
from providers.errors import (
    AmbiguousError,
    ExpiredTokenError,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.http_provider import HttpProvider, RequestT

#: Requests in flight at once for one recipient's tokens.
DEFAULT_MAX_CONCURRENCY = 10


def unique_tokens(provider: str, tokens: Sequence[str]) -> list[str]:
    """The non-empty tokens without repeats, in order; a recipient error when there are none."""
    unique = list(dict.fromkeys(token for token in tokens if token))
    if not unique:
        raise RecipientError(provider, "the recipient has no device token")
    return unique


async def send_to_each_token(
    provider: str,
    tokens: Sequence[str],
    send_one: Callable[[str], Awaitable[SendResult]],
    *,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
) -> SendResult:
    """Run ``send_one`` for every token concurrently and fold the outcomes (see module doc)."""
    unique = unique_tokens(provider, tokens)
    if len(unique) == 1:
        try:
            return await send_one(unique[0])
        except ExpiredTokenError as exc:
            exc.expired_tokens = (unique[0],)
            raise
    semaphore = asyncio.Semaphore(max_concurrency)

    async def bounded(token: str) -> SendResult:
        async with semaphore:
            return await send_one(token)

    outcomes = await asyncio.gather(*(bounded(token) for token in unique), return_exceptions=True)
    expired = tuple(
        token
        for token, outcome in zip(unique, outcomes, strict=True)
        if isinstance(outcome, ExpiredTokenError)
    )
    try:
        result = fold_outcomes(provider, outcomes)
    except ProviderError as exc:
        exc.expired_tokens = expired
        raise
    return result.model_copy(update={"expired_tokens": expired}) if expired else result


def fold_outcomes(provider: str, outcomes: Sequence[SendResult | BaseException]) -> SendResult:
    """One result from per-token outcomes, in token order (see module doc)."""
    accepted: list[SendResult] = []
    failures: list[ProviderError] = []
    for outcome in outcomes:
        if isinstance(outcome, SendResult):
            accepted.append(outcome)
        elif isinstance(outcome, ProviderError):
            failures.append(outcome)
        else:
            # A bug or a cancellation, not a classified answer: let it propagate unchanged.
            raise outcome
    if accepted:
        ids = [result.provider_message_id for result in accepted if result.provider_message_id]
        return SendResult(
            provider_message_id=",".join(ids) if ids else None,
            status_code=accepted[0].status_code,
        )
    if not failures:
        raise RecipientError(provider, "the recipient has no device token")
    raise _folded_failure(provider, failures)


def _folded_failure(provider: str, failures: list[ProviderError]) -> ProviderError:
    if len(failures) == 1:
        return failures[0]
    for failure in failures:
        if isinstance(failure, IntegrationError):
            return failure
    for failure in failures:
        if isinstance(failure, AmbiguousError):
            return failure
    retryable = [failure for failure in failures if isinstance(failure, RetryableError)]
    if retryable:
        return max(retryable, key=lambda error: error.retry_after or 0.0)
    first = failures[0]
    codes = sorted({failure.provider_code for failure in failures if failure.provider_code})
    detail = f" ({', '.join(codes)})" if codes else ""
    return RecipientError(
        provider,
        f"all {len(failures)} device tokens were rejected{detail}",
        status_code=first.status_code,
        provider_code=first.provider_code,
    )


def only_token(provider: str, message: Message) -> str:
    """The one device token of a message :class:`PerTokenHttpProvider` builds a request for."""
    tokens = unique_tokens(provider, message.to.device_tokens)
    if len(tokens) != 1:
        raise RecipientError(provider, f"one device token per request, not {len(tokens)}")
    return tokens[0]


class PerTokenHttpProvider(
    HttpProvider[CredentialsT, SettingsT, RequestT], Generic[CredentialsT, SettingsT, RequestT]
):
    """A push API taking one address per request: :meth:`build_request` sees a message with
    one device token (:func:`only_token`); ``send`` sends one per token and folds them."""

    #: Requests in flight at once for one recipient's tokens.
    max_concurrency: ClassVar[int] = DEFAULT_MAX_CONCURRENCY

    async def send(
        self,
        message: Message,
        credentials: CredentialsT,
        settings: SettingsT,
        client: httpx.AsyncClient,
    ) -> SendResult:
        send_one_request = super().send

        async def send_one(token: str) -> SendResult:
            single = message.model_copy(
                update={"to": message.to.model_copy(update={"device_tokens": (token,)})}
            )
            return await send_one_request(single, credentials, settings, client)

        return await send_to_each_token(
            self.name, message.to.device_tokens, send_one, max_concurrency=self.max_concurrency
        )

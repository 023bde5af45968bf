"""Sending one push message to every device token of a recipient, one request per token.

APIs such as FCM HTTP v1 and APNs take a single device token per request. The push providers send
to all tokens of a recipient concurrently and fold the per-token outcomes into one:

* at least one token accepted: success; ``provider_message_id`` lists the accepted message ids,
  comma-separated, in token order (tokens that failed are left out);
* no token accepted: an :class:`IntegrationError` if any token got one (the credentials or
  configuration are wrong, whatever the tokens), else a :class:`RetryableError` if any token got one
  (with the longest ``retry_after`` asked for), else a :class:`RecipientError` (every token is
  invalid or unregistered).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from providers.base import SendResult
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError


async def send_to_each_token(
    provider: str,
    tokens: Sequence[str],
    send_one: Callable[[str], Awaitable[SendResult]],
) -> SendResult:
    """Run ``send_one`` for every token concurrently and fold the outcomes (see module doc)."""
    unique = list(dict.fromkeys(token for token in tokens if token))
    if not unique:
        raise RecipientError(provider, "the recipient has no device token")
    if len(unique) == 1:
        return await send_one(unique[0])
    outcomes = await asyncio.gather(*(send_one(token) for token in unique), return_exceptions=True)
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
    raise _folded_failure(provider, failures)


def _folded_failure(provider: str, failures: list[ProviderError]) -> ProviderError:
    for failure in failures:
        if isinstance(failure, IntegrationError):
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

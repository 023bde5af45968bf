"""Errors a provider raises when a send does not succeed.

Every failure is classified at the provider boundary, so the dispatcher decides what to do from the
class alone::

    ProviderError                  base; carries provider name and HTTP status (if any)
    ├── RetryableError             try again later on the same integration (network error, timeout,
    │   │                          5xx, 429); ``retry_after`` in seconds when the provider said so,
    │   │                          always finite and non-negative (:mod:`providers.retry_after`)
    │   └── AmbiguousError         the request may have reached the provider, which may have acted
    │                              on it (read timeout, connection lost after the request was
    │                              sent, incomplete answer): a resend may duplicate the message
    ├── IntegrationError           permanent for this integration (401/403, bad credentials, bad
    │                              configuration): fall back to the next integration at once
    └── RecipientError             permanent for this message (invalid address, unknown device
        │                          token): fail the delivery without burning other integrations
        └── ExpiredTokenError      a device token or push subscription the provider says is gone:
                                   also removed from the subscriber

Messages never contain credentials, URLs carrying tokens, or request bodies: they are written to
attempt records and logs.
"""

from __future__ import annotations

from providers.retry_after import bounded_wait

#: Characters of a provider's explanation an error keeps. Only a bound on memory: the dispatcher
#: masks secrets in it first and then cuts it to what it stores, so a secret the provider echoed
#: is always masked whole (a cut here, before masking, could leave a part of one readable).
MAX_DETAIL = 8_000


class ProviderError(Exception):
    """A send that did not succeed, already classified."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status_code: int | None = None,
        provider_code: str | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.reason = message
        self.status_code = status_code
        self.provider_code = provider_code
        #: Device tokens of the recipient found gone while trying (a fan-out to several
        #: tokens may fail for other reasons): the dispatcher removes them.
        self.expired_tokens: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, reason={self.reason!r}, "
            f"status_code={self.status_code!r})"
        )


class RetryableError(ProviderError):
    """Transient failure: the same integration may succeed later."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status_code: int | None = None,
        provider_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(provider, message, status_code=status_code, provider_code=provider_code)
        self.retry_after = retry_after

    @property
    def retry_after(self) -> float | None:
        """Seconds the provider asked to wait, bounded however it was given (a provider module
        of any author may set it from an answer's body)."""
        return self._retry_after

    @retry_after.setter
    def retry_after(self, value: float | None) -> None:
        self._retry_after = bounded_wait(value)


class IntegrationError(ProviderError):
    """Permanent for this integration: credentials or configuration are wrong."""


class RecipientError(ProviderError):
    """Permanent for this message: the recipient cannot be reached through any integration."""


class ExpiredTokenError(RecipientError):
    """The device token or push subscription is gone for good (Web Push 404/410): the
    dispatcher removes it from the subscriber's push addresses, so it is not tried again."""


class AmbiguousError(RetryableError):
    """No answer, but the request may have reached the provider: it may have sent the message.

    Retryable like its base (at-least-once); a dispatcher may instead record the outcome as
    unknown and not resend. A failure before the request was written (connection refused, name
    not resolved, connect timeout, TLS handshake) is a plain :class:`RetryableError`: a resend
    cannot duplicate anything.
    """

"""Checking an integration's credentials on request (``dispatcher integrations test``, the
API's ``POST /v1/integrations/{id}/test``): the same preparation as a send, through the URL
guard, then the provider's harmless call where it has one.

Nothing here returns a credential: the outcome's detail is redacted with the worker's
redactor, which knows the forms a provider may echo them in.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from dispatcher.config import get_settings
from dispatcher.observability.redaction import default_redactor
from dispatcher.runtime.http import SendingRuntime
from dispatcher.runtime.url_guard import DestinationGuard
from dispatcher.sending.integrations import Candidate, Prepared, prepare
from providers import CheckResult, IntegrationError, ProviderError
from providers.base import secret_values

#: Seconds: a credentials check is interactive, so it gives up long before a send would.
CHECK_TIMEOUT = 10.0


@dataclass(frozen=True)
class CheckOutcome:
    ok: bool
    #: What the provider said, or why the check failed (never a credential).
    detail: str
    #: False when the provider has no call to check with (validation alone was done).
    asked_provider: bool = True


def check_runtime() -> SendingRuntime:
    """The worker's HTTP client factory with the short timeouts of an interactive check."""
    return SendingRuntime(
        timeout=CHECK_TIMEOUT, max_connections=4, url_allowlist=get_settings().url_allowlist
    )


async def _ask(prepared: Prepared) -> CheckResult | None:
    return await prepared.provider.check(prepared.credentials, prepared.settings, prepared.client)


def check_candidate(candidate: Candidate) -> CheckOutcome:
    """Validate, guard and (where the provider can) ask the provider about one integration."""
    guard = DestinationGuard(get_settings().url_allowlist)
    runtime = check_runtime()
    try:
        try:
            prepared = runtime.run(prepare(candidate, guard, runtime))
        except IntegrationError as exc:
            return CheckOutcome(False, exc.reason)
        with default_redactor.scope():
            default_redactor.add(*secret_values(prepared.credentials))
            try:
                answer = runtime.run(_ask(prepared))
            except ProviderError as exc:
                return CheckOutcome(
                    False, default_redactor.redact_text(f"{type(exc).__name__}: {exc}")
                )
            except httpx.HTTPError as exc:
                return CheckOutcome(
                    False, f"{type(exc).__name__} (the provider let an HTTP error escape)"
                )
            detail = None if answer is None else default_redactor.redact_text(answer.detail)
    finally:
        runtime.close()
    if answer is None or detail is None:
        return CheckOutcome(
            True,
            f"credentials and settings are valid; {candidate.provider} has no call to check "
            "them with",
            asked_provider=False,
        )
    return CheckOutcome(answer.ok, detail)

"""Small helpers for the chat providers' extra tests: one send or check against respx routes,
reusing a test module's :class:`ProviderCase` for everything the test does not change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import respx

from providers.base import CheckResult, Message, SendResult
from providers.errors import ProviderError
from tests.providers.harness import Answer, ProviderCase, run


@dataclass
class Outcome:
    result: SendResult | None = None
    error: ProviderError | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    @property
    def request(self) -> httpx.Request:
        assert len(self.requests) == 1, f"expected one request, got {len(self.requests)}"
        return self.requests[0]


def send(
    case: ProviderCase,
    answer: Answer | list[Answer] | Exception,
    *,
    message: Message | None = None,
    settings: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
    url: str | None = None,
) -> Outcome:
    """Send ``message`` (default: the case's) and answer at ``url`` (default: the case's)."""
    provider = case.provider()
    parsed_credentials = provider.parse_credentials(credentials or case.credentials)
    parsed_settings = provider.parse_settings(case.settings if settings is None else settings)

    async def go() -> SendResult:
        async with httpx.AsyncClient(timeout=5.0) as client:
            return await provider.send(
                message or case.message, parsed_credentials, parsed_settings, client
            )

    outcome = Outcome()
    with respx.mock(assert_all_called=False) as router:
        route = router.route(method=case.method, url=url or case.url)
        if isinstance(answer, list):
            route.side_effect = [item.response() for item in answer]
        elif isinstance(answer, Exception):
            route.side_effect = answer
        else:
            route.return_value = answer.response()
        try:
            outcome.result = run(go())
        except ProviderError as error:
            outcome.error = error
        outcome.requests = [call.request for call in route.calls]
    return outcome


def check(
    case: ProviderCase,
    url: str,
    answer: Answer,
    *,
    settings: dict[str, Any] | None = None,
    method: str = "POST",
) -> tuple[CheckResult | None, list[httpx.Request]]:
    """Run the provider's ``check`` with ``answer`` at ``url``."""
    provider = case.provider()

    async def go() -> CheckResult | None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            return await provider.check(
                provider.parse_credentials(case.credentials),
                provider.parse_settings(case.settings if settings is None else settings),
                client,
            )

    with respx.mock(assert_all_called=False) as router:
        route = router.route(method=method, url=url).mock(return_value=answer.response())
        result = run(go())
    return result, [call.request for call in route.calls]

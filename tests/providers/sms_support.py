"""Small drivers the SMS provider tests share: one send or one check against one respx route."""

from __future__ import annotations

from typing import Any

import httpx
import respx

from providers.base import CheckResult, Message, Provider, SendResult
from providers.errors import ProviderError
from tests.providers.harness import Answer, run


def send_once(
    provider_class: type[Provider[Any, Any]],
    credentials: dict[str, Any],
    settings: dict[str, Any],
    message: Message,
    url: str,
    answer: Answer,
    method: str = "POST",
) -> tuple[SendResult | ProviderError, list[httpx.Request]]:
    """Send ``message`` against one mocked route; the outcome is the result or the error."""
    provider = provider_class()
    parsed_credentials = provider.parse_credentials(credentials)
    parsed_settings = provider.parse_settings(settings)

    async def go() -> SendResult:
        async with httpx.AsyncClient() as client:
            return await provider.send(message, parsed_credentials, parsed_settings, client)

    outcome: SendResult | ProviderError
    with respx.mock(assert_all_called=False) as router:
        route = router.route(method=method, url=url).mock(return_value=answer.response())
        try:
            outcome = run(go())
        except ProviderError as error:
            outcome = error
        requests = [call.request for call in route.calls]
    return outcome, requests


def check_once(
    provider_class: type[Provider[Any, Any]],
    credentials: dict[str, Any],
    settings: dict[str, Any],
    url: str,
    answer: Answer,
) -> tuple[CheckResult, httpx.Request]:
    """Run ``check`` against one mocked GET route."""
    provider = provider_class()

    async def go() -> CheckResult | None:
        async with httpx.AsyncClient() as client:
            return await provider.check(
                provider.parse_credentials(credentials), provider.parse_settings(settings), client
            )

    with respx.mock() as router:
        route = router.get(url).mock(return_value=answer.response())
        result = run(go())
    assert result is not None
    assert len(route.calls) == 1
    return result, route.calls[0].request

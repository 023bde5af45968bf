"""Shared helpers of the delivery-callback tests: run a provider's parser, expect a refusal.

Each provider's test signs its documented sample payload with keys made in the test, then calls
:func:`parse` (the events) or :func:`rejected` (the refusal's reason) through the provider's own
credentials and settings models, as the dispatcher would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from providers.base import Provider
from providers.callbacks import CallbackRejectedError, CallbackRequest, ParsedCallback
from tests.providers.harness import run

URL = "https://notify.example.com/v1/callbacks/integration-1"


def request(
    body: bytes, headers: Mapping[str, str] | None = None, url: str = URL
) -> CallbackRequest:
    return CallbackRequest(url=url, headers=dict(headers or {}), body=body)


def _refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected request to {request.url}")


async def _parse(
    provider: Provider[Any, Any],
    callback: CallbackRequest,
    credentials: Mapping[str, Any],
    settings: Mapping[str, Any],
    transport: httpx.MockTransport | None,
) -> ParsedCallback:
    async with httpx.AsyncClient(transport=transport or httpx.MockTransport(_refuse)) as client:
        return await provider.parse_callback(
            callback,
            provider.parse_credentials(dict(credentials)),
            provider.parse_settings(dict(settings)),
            client,
        )


def parse(
    provider: Provider[Any, Any],
    callback: CallbackRequest,
    credentials: Mapping[str, Any],
    settings: Mapping[str, Any],
    transport: httpx.MockTransport | None = None,
) -> ParsedCallback:
    """The provider's parse of ``callback``; no request leaves unless ``transport`` answers it."""
    return run(_parse(provider, callback, credentials, settings, transport))


def rejected(
    provider: Provider[Any, Any],
    callback: CallbackRequest,
    credentials: Mapping[str, Any],
    settings: Mapping[str, Any],
    transport: httpx.MockTransport | None = None,
) -> CallbackRejectedError:
    """The refusal of ``callback`` (the test fails if it is accepted)."""
    with pytest.raises(CallbackRejectedError) as caught:
        parse(provider, callback, credentials, settings, transport)
    assert caught.value.provider == provider.name
    for secret in _secrets(credentials):
        assert secret not in str(caught.value)
    return caught.value


def _secrets(credentials: Mapping[str, Any]) -> list[str]:
    return [value for value in credentials.values() if isinstance(value, str) and len(value) > 8]

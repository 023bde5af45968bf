"""Driving an SMS provider's ``parse_callback`` as the dispatcher does, for the callback tests.

:func:`parse` validates the credentials and settings dicts through the provider's own models and
hands the parser a client whose transport fails the test on any request: verifying these
providers' callbacks needs no network. :func:`rejected` expects a
:class:`~providers.callbacks.CallbackRejectedError` and checks that its message quotes no secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import httpx
import pytest

from providers.base import Provider
from providers.callbacks import CallbackRejectedError, CallbackRequest, ParsedCallback
from tests.providers.harness import run


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"parse_callback made a request: {request.method} {request.url}")


async def _parse(
    provider: Provider[Any, Any],
    request: CallbackRequest,
    credentials: Mapping[str, Any],
    settings: Mapping[str, Any],
) -> ParsedCallback:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_no_network)) as client:
        return await provider.parse_callback(
            request,
            provider.parse_credentials(dict(credentials)),
            provider.parse_settings(dict(settings)),
            client,
        )


def parse(
    provider_class: type[Provider[Any, Any]],
    request: CallbackRequest,
    credentials: Mapping[str, Any],
    settings: Mapping[str, Any],
) -> ParsedCallback:
    """What the provider's parser makes of ``request``."""
    return run(_parse(provider_class(), request, credentials, settings))


def rejected(
    provider_class: type[Provider[Any, Any]],
    request: CallbackRequest,
    credentials: Mapping[str, Any],
    settings: Mapping[str, Any],
    *,
    secrets: Iterable[str] = (),
) -> CallbackRejectedError:
    """The rejection of ``request``; its text must not contain any of ``secrets``."""
    with pytest.raises(CallbackRejectedError) as caught:
        parse(provider_class, request, credentials, settings)
    for secret in secrets:
        assert secret not in str(caught.value)
    return caught.value

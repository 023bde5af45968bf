"""Signed JWTs and cached bearer tokens, shared by the providers that sign their own auth.

FCM signs an RS256 assertion with a service-account key and exchanges it for an OAuth access
token; APNs signs an ES256 provider token and sends it as it is. Both keep the result for a while
and mint a new one shortly before it expires:

* :func:`sign_jwt` signs claims with a PEM private key held in a ``SecretStr``; a key that does not
  load becomes an :class:`IntegrationError` naming the credentials field, never the key;
* :func:`load_private_key` checks a PEM key's type when credentials are parsed;
* :class:`TokenCache` keeps one token per credentials fingerprint until its ``expires_at`` and lets
  one coroutine per key and event loop mint a fresh one while the others wait for it;
* :func:`request_token` posts an OAuth 2.0 token request (RFC 6749 section 4: FCM's JWT bearer
  grant, Microsoft Graph's client credentials) and reads the answer into a :class:`CachedToken`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from pydantic import SecretStr

from providers.errors import MAX_DETAIL, AmbiguousError, IntegrationError, RetryableError
from providers.http import classify_status, json_body, send_request

Clock = Callable[[], float]

#: Lifetime assumed for an access token whose answer states no ``expires_in``.
DEFAULT_TOKEN_LIFETIME = 3600.0


def pem_text(private_key: SecretStr) -> str:
    """The PEM text of a key, with ``\\n`` escapes (a key pasted from a JSON file) unescaped."""
    return private_key.get_secret_value().replace("\\n", "\n").strip()


def load_private_key(private_key: SecretStr) -> PrivateKeyTypes | None:
    """The loaded key, or ``None`` when the text is not an unencrypted PEM private key."""
    with contextlib.suppress(Exception):
        return serialization.load_pem_private_key(pem_text(private_key).encode(), password=None)
    return None


def sign_jwt(
    provider: str,
    claims: Mapping[str, Any],
    private_key: SecretStr,
    *,
    algorithm: str,
    headers: Mapping[str, Any] | None = None,
    key_field: str = "private_key",
) -> str:
    """A compact JWT of ``claims`` signed with ``private_key`` using ``algorithm``."""
    with contextlib.suppress(Exception):
        return jwt.encode(
            dict(claims),
            pem_text(private_key),
            algorithm=algorithm,
            headers=dict(headers) if headers else None,
        )
    # Raised once the failure was suppressed, so no exception about the key is chained to it.
    raise IntegrationError(provider, f"{key_field} is not a valid PEM private key for {algorithm}")


def fingerprint(*parts: str) -> str:
    """A cache key for credentials that holds none of their text."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class CachedToken:
    value: str
    #: Unix time after which the token is minted again (already less any safety margin).
    expires_at: float


class TokenCache:
    """Bearer tokens by credentials fingerprint, minted at most once at a time per key.

    A provider instance owns one cache, so a worker process that keeps its provider instances
    reuses tokens across sends.
    """

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._tokens: dict[str, CachedToken] = {}
        # One lock per key and event loop (an asyncio lock must not cross event loops).
        self._locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    async def get(self, key: str, mint: Callable[[], Awaitable[CachedToken]]) -> str:
        """The cached token for ``key``, or the one ``mint`` returns when there is none valid."""
        cached = self._valid(key)
        if cached is not None:
            return cached.value
        async with self._lock(key):
            cached = self._valid(key)
            if cached is not None:
                return cached.value
            fresh = await mint()
            self._tokens[key] = fresh
            return fresh.value

    def drop(self, key: str, value: str) -> None:
        """Forget ``value`` (the API rejected it) unless a newer token already replaced it."""
        cached = self._tokens.get(key)
        if cached is not None and cached.value == value:
            del self._tokens[key]

    def _valid(self, key: str) -> CachedToken | None:
        cached = self._tokens.get(key)
        if cached is not None and cached.expires_at > self._clock():
            return cached
        return None

    def _lock(self, key: str) -> asyncio.Lock:
        locks = self._locks.setdefault(asyncio.get_running_loop(), {})
        return locks.setdefault(key, asyncio.Lock())


async def request_token(
    provider: str,
    client: httpx.AsyncClient,
    token_url: str,
    form: Mapping[str, str],
    *,
    now: float,
    refresh_margin: float,
) -> CachedToken:
    """The access token an OAuth 2.0 token endpoint grants for ``form``, kept until
    ``refresh_margin`` seconds before its ``expires_in`` runs out.

    No message has been sent yet, so a lost answer is plainly retryable (never ambiguous). A
    refusal (RFC 6749 section 5.2: ``{"error", "error_description"}``, a 400 or 401 for bad
    client credentials or grant) is an :class:`IntegrationError`; a 5xx or 429 is retried.
    """
    try:
        response = await send_request(provider, client, "POST", token_url, data=dict(form))
    except AmbiguousError as exc:
        raise RetryableError(provider, f"token exchange: {exc.reason}") from None
    body = json_body(response)
    if not response.is_success:
        oauth_error = body.get("error")
        code = oauth_error if isinstance(oauth_error, str) else None
        description = body.get("error_description")
        reason = f"token exchange failed: HTTP {response.status_code} {code or ''}".strip()
        if isinstance(description, str) and description:
            reason = f"{reason}: {description[:MAX_DETAIL]}"
        raise classify_status(
            provider, response, table={400: IntegrationError}, message=reason, provider_code=code
        )
    value = body.get("access_token")
    if not isinstance(value, str) or not value:
        raise RetryableError(
            provider, "token exchange answered without an access token", status_code=200
        )
    expires_in = body.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) else DEFAULT_TOKEN_LIFETIME
    return CachedToken(value=value, expires_at=now + lifetime - refresh_margin)

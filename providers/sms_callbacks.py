"""Helpers shared by the SMS providers' delivery-callback parsers.

The SMS providers sign their status callbacks five different ways (Twilio and Plivo an HMAC over
the URL and the form, Telnyx an Ed25519 signature, Vonage an HMAC or MD5 over the sorted
parameters, MessageBird a JWT), but the steps around the signature are the same, and live here
once:

* :func:`require_secret` refuses every callback of an integration whose verification key is not
  configured: a callback is never accepted unsigned;
* :func:`form_fields` / :func:`query_fields` read ``application/x-www-form-urlencoded`` bytes or a
  URL's query as the signers read them (every value of a repeated name, blank values kept);
* :func:`fresh_timestamp` applies the replay window
  (:data:`providers.callbacks.CALLBACK_TOLERANCE_SECONDS`) to a signed Unix timestamp;
* :func:`digest_event_id` makes a stable de-duplication id where the provider gives none.

Errors raised here name what is wrong (a header, a field, the window), never a secret or the
signature we expected.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr

from providers.callbacks import CALLBACK_TOLERANCE_SECONDS, CallbackRejectedError

#: A form or query string as signers read it: every name with all its values, in order.
Fields = Mapping[str, list[str]]


def require_secret(provider: str, secret: SecretStr | str | None, field: str) -> str:
    """The configured verification key, or a rejection naming the credentials ``field``."""
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not value:
        raise CallbackRejectedError(
            provider, f"no webhook secret configured (credentials field {field!r})"
        )
    return value


def require_header(provider: str, headers: Mapping[str, str], name: str) -> str:
    """A header's value (names are lower case in a ``CallbackRequest``), or a rejection."""
    value = headers.get(name.lower())
    if not value:
        raise CallbackRejectedError(provider, f"missing {name} header")
    return value


def form_fields(provider: str, body: bytes) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body, blank values kept (they are signed too)."""
    try:
        text = body.decode("utf-8")
        return parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise CallbackRejectedError(provider, "body is not a form", unreadable=True) from None


def query_fields(provider: str, url: str) -> dict[str, list[str]]:
    """The query string of ``url``, read as :func:`form_fields` reads a body."""
    query = urlsplit(url).query
    try:
        return parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise CallbackRejectedError(
            provider, "query string is malformed", unreadable=True
        ) from None


def json_object(provider: str, body: bytes) -> dict[str, Any]:
    """A JSON object body (after its signature was checked), or an unreadable rejection."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise CallbackRejectedError(provider, "body is not JSON", unreadable=True) from None
    if not isinstance(value, dict):
        raise CallbackRejectedError(provider, "body is not a JSON object", unreadable=True)
    return value


def first(fields: Fields, name: str) -> str | None:
    """The first value of ``name``, or ``None`` when absent or blank."""
    values = fields.get(name)
    return values[0] if values and values[0] else None


def fresh_timestamp(provider: str, value: str | None, *, now: float | None = None) -> datetime:
    """A signed Unix timestamp (seconds) within the replay window of our clock, as a datetime.

    Both directions are refused: an old timestamp is a replay, one far ahead is a clock we
    cannot trust.
    """
    if not value:
        raise CallbackRejectedError(provider, "missing signed timestamp")
    try:
        seconds = float(value.strip())
    except ValueError:
        raise CallbackRejectedError(provider, "signed timestamp is not a number") from None
    if not math.isfinite(seconds):
        raise CallbackRejectedError(provider, "signed timestamp is not a number")
    current = time.time() if now is None else now
    if abs(current - seconds) > CALLBACK_TOLERANCE_SECONDS:
        raise CallbackRejectedError(
            provider,
            f"signed timestamp is more than {CALLBACK_TOLERANCE_SECONDS} seconds from our clock",
        )
    return datetime.fromtimestamp(seconds, tz=UTC)


def received_at() -> datetime:
    """The receipt's time, for providers whose callback says no time of its own."""
    return datetime.now(tz=UTC)


def digest_event_id(provider: str, *parts: str) -> str:
    """A stable event id for providers without one: a sha256 over what identifies the event."""
    joined = "\x1f".join((provider, *parts))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset) as an aware datetime, else ``None``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

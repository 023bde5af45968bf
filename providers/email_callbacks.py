"""What the email providers' delivery callbacks check the same way.

Every parser needs the same few steps before it reads its own event shapes: the integration's
webhook secret (absent means every callback is refused, never accepted unsigned), the signed
timestamp within :data:`providers.callbacks.CALLBACK_TOLERANCE_SECONDS`, the body as JSON, a
de-duplication id for providers that give events none, and, for the providers that sign nothing
and only put HTTP basic auth (or a bearer token) on the webhook URL, a constant-time comparison
of that header. Parsers raise :class:`CallbackRejectedError` with a reason naming what was wrong,
never the secret or the expected value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from providers.callbacks import (
    CALLBACK_TOLERANCE_SECONDS,
    CallbackRejectedError,
    CallbackRequest,
    DeliveryEventKind,
)

NOT_CONFIGURED = "no webhook secret configured"


def configured(provider: str, secret: SecretStr | str | None) -> str:
    """The secret's value, or a rejection when the integration has none."""
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not value:
        raise CallbackRejectedError(provider, NOT_CONFIGURED)
    return value


def required_header(provider: str, request: CallbackRequest, name: str) -> str:
    value = request.header(name)
    if not value:
        raise CallbackRejectedError(provider, f"missing {name} header")
    return value


def check_timestamp(provider: str, timestamp: str | float, *, now: float | None = None) -> None:
    """Refuse a signed Unix timestamp outside the tolerance window (a replay, or garbage)."""
    try:
        seconds = float(timestamp)
    except (TypeError, ValueError):
        raise CallbackRejectedError(provider, "the signed timestamp is not a number") from None
    current = time.time() if now is None else now
    if abs(current - seconds) > CALLBACK_TOLERANCE_SECONDS:
        raise CallbackRejectedError(
            provider, f"the signed timestamp is more than {CALLBACK_TOLERANCE_SECONDS}s away"
        )


def json_body(provider: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise CallbackRejectedError(provider, "the body is not JSON", unreadable=True) from None


def unreadable(provider: str, what: str) -> CallbackRejectedError:
    return CallbackRejectedError(provider, what, unreadable=True)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def b64decode(provider: str, value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CallbackRejectedError(provider, f"{what} is not base64") from None


def event_digest(message_id: str, kind: DeliveryEventKind, occurred_at: datetime) -> str:
    """The de-duplication id of an event whose provider gives it none."""
    text = f"{message_id}\n{kind.value}\n{occurred_at.isoformat()}"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def from_unix(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def from_iso(value: Any) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset); a time without a zone is taken as UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def received_now() -> datetime:
    return datetime.now(UTC)


def check_basic_auth(
    provider: str, request: CallbackRequest, username: str | None, password: SecretStr | None
) -> None:
    """The ``Authorization: Basic`` header the webhook URL carries must be the configured pair."""
    secret = configured(provider, password)
    header = required_header(provider, request, "authorization")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise CallbackRejectedError(provider, "the Authorization header is not basic auth")
    sent = b64decode(provider, encoded.strip(), "the basic auth credentials")
    expected = f"{username or ''}:{secret}".encode()
    if not hmac.compare_digest(sent, expected):
        raise CallbackRejectedError(provider, "wrong basic auth credentials")


def text_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (a field a payload left out)."""
    return value if isinstance(value, dict) else {}


def check_authorization(
    provider: str,
    request: CallbackRequest,
    *,
    username: str | None,
    password: SecretStr | None,
    token: SecretStr | None,
) -> None:
    """The webhook's ``Authorization`` header: basic auth with the configured pair, or the
    configured bearer token; refused when neither is configured."""
    if not (password and password.get_secret_value()) and not (token and token.get_secret_value()):
        raise CallbackRejectedError(provider, NOT_CONFIGURED)
    header = required_header(provider, request, "authorization")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and token and token.get_secret_value():
        if not hmac.compare_digest(value.strip().encode(), token.get_secret_value().encode()):
            raise CallbackRejectedError(provider, "wrong bearer token")
        return
    if scheme.lower() == "basic" and password and password.get_secret_value():
        check_basic_auth(provider, request, username, password)
        return
    raise CallbackRejectedError(provider, "the Authorization header is not the configured scheme")


def bracketed(message_id: str) -> str:
    """A Message-ID in the angle brackets the APIs that answer one use (``<id@host>``)."""
    return "<" + message_id.strip().removeprefix("<").removesuffix(">") + ">"

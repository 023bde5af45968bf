"""MessageBird SMS status reports: https://developers.messagebird.com/api/sms-messaging/#handle-a-status-report

MessageBird calls the send's ``reportUrl`` (or the account's) with a GET whose query holds
``id`` (the message id the send answered), ``reference``, ``recipient`` (an MSISDN, digits
only), ``status``, ``statusReason``, ``statusErrorCode``, ``statusDatetime``, ``mccmnc``,
``ported`` and ``price[amount]``/``price[currency]``; a POST form or JSON body is read the same
way. It signs the request (https://developers.messagebird.com/docs/verify-http-requests) with
``MessageBird-Signature-JWT``: a JWT signed with the account's signing key (HS256; HS384 and
HS512 are accepted, as the official SDKs' ``RequestValidator`` accepts them), issuer
``MessageBird``, ``nbf``/``exp`` a minute apart, ``url_hash`` the hex sha256 of the URL called
(query included, as sent) and, when there is a body, ``payload_hash`` the hex sha256 of the body.
A token whose ``nbf`` is further than :data:`~providers.callbacks.CALLBACK_TOLERANCE_SECONDS` in
the past is refused even if its ``exp`` says otherwise.

Reports carry no event id (``jti`` changes with every delivery attempt of the report): it is a
digest of (``id``, ``status``, ``statusDatetime``).

Statuses mapped: ``delivered`` -> delivered; ``delivery_failed`` and ``expired`` -> undelivered.
Dropped (not final): ``scheduled``, ``sent``, ``buffered``, and any other. A failure whose reason
is "unknown subscriber" (the number is not an active line), or whose ``statusErrorCode`` is one
the SMS platform files under it (1, 2, 3, 5, 9, 10, 11, 12:
https://docs.bird.com/api/channels-api/message-status-and-interactions/message-failure-sources/sms-platform-extended-error-codes),
suppresses the number.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import jwt

from providers.callbacks import (
    CALLBACK_TOLERANCE_SECONDS,
    CallbackRejectedError,
    CallbackRequest,
    DeliveryEvent,
    DeliveryEventKind,
    ParsedCallback,
)
from providers.sms_callbacks import (
    digest_event_id,
    form_fields,
    json_object,
    parse_time,
    query_fields,
    require_header,
    require_secret,
)

PROVIDER = "messagebird"
SIGNATURE_HEADER = "MessageBird-Signature-JWT"
ISSUER = "MessageBird"
ALGORITHMS = ["HS256", "HS384", "HS512"]
#: Seconds of clock skew ``nbf`` and ``exp`` allow, as the official validators allow.
LEEWAY = 1

STATUSES: dict[str, DeliveryEventKind] = {
    "delivered": DeliveryEventKind.DELIVERED,
    "delivery_failed": DeliveryEventKind.UNDELIVERED,
    "expired": DeliveryEventKind.UNDELIVERED,
}

#: ``statusErrorCode`` values of the "unknown subscriber" reason: the number is not a live line.
UNKNOWN_SUBSCRIBER_CODES = frozenset({"1", "2", "3", "5", "9", "10", "11", "12"})


def verify_signature(
    token: str, signing_key: str, url: str, body: bytes, *, now: float | None = None
) -> dict[str, Any]:
    """The claims of a valid ``MessageBird-Signature-JWT`` for this URL and body, else rejected."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=signing_key,
            algorithms=ALGORITHMS,
            issuer=ISSUER,
            options={
                "require": ["iss", "nbf", "exp"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidTokenError as error:
        raise CallbackRejectedError(PROVIDER, f"{SIGNATURE_HEADER} is invalid: {error}") from None
    _check_times(claims, time.time() if now is None else now)
    url_hash = claims.get("url_hash")
    expected_url = hashlib.sha256(url.encode("utf-8")).hexdigest()
    if not isinstance(url_hash, str) or not hmac.compare_digest(expected_url, url_hash):
        raise CallbackRejectedError(PROVIDER, "url_hash does not match the URL called")
    payload_hash = claims.get("payload_hash")
    if body and not isinstance(payload_hash, str):
        raise CallbackRejectedError(PROVIDER, "payload_hash is not set but a body is present")
    if not body and payload_hash:
        raise CallbackRejectedError(PROVIDER, "payload_hash is set but the body is missing")
    if body and isinstance(payload_hash, str):
        expected_body = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(expected_body, payload_hash):
            raise CallbackRejectedError(PROVIDER, "payload_hash does not match the body")
    return claims


def report_fields(request: CallbackRequest) -> dict[str, str]:
    """A status report's parameters: the query of a GET, else the form or JSON body."""
    if request.method.upper() == "GET" or not request.body:
        return {name: values[0] for name, values in query_fields(PROVIDER, request.url).items()}
    if "json" in (request.header("content-type") or ""):
        return {
            str(name): "" if value is None else str(value)
            for name, value in json_object(PROVIDER, request.body).items()
        }
    return {name: values[0] for name, values in form_fields(PROVIDER, request.body).items()}


def parse_status_report(request: CallbackRequest, signing_key: str | None) -> ParsedCallback:
    """Verify a signed status report with the signing key and normalize its status."""
    key = require_secret(PROVIDER, signing_key, "signing_key")
    token = require_header(PROVIDER, request.headers, SIGNATURE_HEADER)
    claims = verify_signature(token, key, request.url, request.body)
    fields = report_fields(request)
    status = fields.get("status", "").lower()
    kind = STATUSES.get(status)
    if kind is None:
        return ParsedCallback()
    message_id = fields.get("id")
    if not message_id:
        raise CallbackRejectedError(PROVIDER, "status report has no id", unreadable=True)
    failed = kind is DeliveryEventKind.UNDELIVERED
    reason_text = fields.get("statusReason", "")
    code = fields.get("statusErrorCode", "")
    suppress = failed and (
        reason_text.lower() == "unknown subscriber" or code in UNKNOWN_SUBSCRIBER_CODES
    )
    reason = None
    if failed:
        detail = ", ".join(part for part in (reason_text, f"code {code}" if code else "") if part)
        reason = f"{status} ({detail})" if detail else status
    recipient = fields.get("recipient")
    stated = fields.get("statusDatetime", "")
    event = DeliveryEvent(
        kind=kind,
        provider_message_id=message_id,
        occurred_at=parse_time(stated) or datetime.fromtimestamp(claims["nbf"], tz=UTC),
        event_id=digest_event_id(PROVIDER, message_id, status, stated),
        recipient=f"+{recipient}" if recipient and recipient.isdigit() else recipient,
        suppress=suppress,
        reason=reason,
    )
    return ParsedCallback(events=(event,))


def _check_times(claims: dict[str, Any], now: float) -> None:
    """``nbf`` and ``exp`` against our clock, and ``nbf`` within the replay window."""
    not_before, expires = claims.get("nbf"), claims.get("exp")
    if not isinstance(not_before, int | float) or not isinstance(expires, int | float):
        raise CallbackRejectedError(PROVIDER, "nbf and exp must be numbers")
    if not_before > now + LEEWAY:
        raise CallbackRejectedError(PROVIDER, "token is not valid yet (nbf)")
    if expires <= now - LEEWAY:
        raise CallbackRejectedError(PROVIDER, "token has expired (exp)")
    if now - not_before > CALLBACK_TOLERANCE_SECONDS:
        raise CallbackRejectedError(
            PROVIDER, f"token is older than {CALLBACK_TOLERANCE_SECONDS} seconds (nbf)"
        )

"""Vonage SMS API delivery receipts: https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts

:mod:`providers.vonage` sends through the SMS API (``/sms/json``), whose delivery receipts (not the
Messages API's JWT-signed status webhooks) reach the ``callback`` URL or the account's default
one, as a GET query, a POST form or a POST JSON object as the account's "HTTP Method" setting
says: ``messageId``, ``msisdn`` (the recipient, digits only), ``status``, ``err-code``,
``message-timestamp``, ``scts``, ``api-key``, ``client-ref`` and more.

With signed webhooks enabled they carry ``timestamp``, ``nonce`` and ``sig``, computed as
https://developer.vonage.com/en/getting-started/concepts/signing-messages and the official SDKs'
``check_signature`` say: every parameter but ``sig``, sorted by name, each value with ``&`` and
``=`` replaced by ``_``, concatenated as ``&name=value``; then, per the account's signature
method (its dashboard setting, ``signature_method`` here), the hex MD5 of that string followed
by the signature secret (``md5hash``, the default) or its hex HMAC keyed with the signature
secret (``md5``, ``sha1``, ``sha256``, ``sha512``), compared without regard to case. The
``timestamp`` must be within :data:`~providers.callbacks.CALLBACK_TOLERANCE_SECONDS` of our clock.
Every query parameter of a GET receipt is taken as a receipt parameter, so the receipt URL
configured at Vonage should carry no query of its own.

Receipts carry no event id: it is a digest of (``messageId``, ``status``, ``scts``). A long text
travels in several parts, each with its own ``messageId`` and receipt; the send stored the first
part's, so only that part's receipt finds the delivery.

Statuses mapped: ``delivered`` -> delivered; ``expired``, ``failed``, ``rejected`` ->
undelivered. Dropped (not final, or no normalized name): ``accepted``, ``buffered``, ``unknown``.
``err-code`` values that say the number must not be sent to again suppress it
(https://api.support.vonage.com/hc/en-us/articles/204014733): 3 absent subscriber - permanent,
4 call barred by user, 9 illegal number (the user asked not to receive messages).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Literal

from providers.callbacks import (
    CallbackRejectedError,
    CallbackRequest,
    DeliveryEvent,
    DeliveryEventKind,
    ParsedCallback,
)
from providers.sms_callbacks import (
    digest_event_id,
    form_fields,
    fresh_timestamp,
    json_object,
    query_fields,
    require_secret,
)

PROVIDER = "vonage"

#: The dashboard's signature methods: "MD5 hash" and the four HMACs.
SignatureMethod = Literal["md5hash", "md5", "sha1", "sha256", "sha512"]

STATUSES: dict[str, DeliveryEventKind] = {
    "delivered": DeliveryEventKind.DELIVERED,
    "expired": DeliveryEventKind.UNDELIVERED,
    "failed": DeliveryEventKind.UNDELIVERED,
    "rejected": DeliveryEventKind.UNDELIVERED,
}

#: ``err-code`` of a receipt: code -> (meaning, whether the number is suppressed).
ERROR_CODES: dict[str, tuple[str, bool]] = {
    "1": ("unknown", False),
    "2": ("absent subscriber - temporary", False),
    "3": ("absent subscriber - permanent", True),
    "4": ("call barred by user", True),
    "5": ("portability error", False),
    "6": ("anti-spam rejection", False),
    "7": ("handset busy", False),
    "8": ("network error", False),
    "9": ("illegal number", True),
    "10": ("illegal message", False),
    "11": ("unroutable", False),
    "12": ("destination unreachable", False),
    "13": ("subscriber age restriction", False),
    "14": ("number blocked by carrier", False),
    "15": ("pre-paid insufficient funds", False),
    "99": ("general error", False),
}


def compute_signature(params: dict[str, str], secret: str, method: SignatureMethod) -> str:
    """Vonage's signature of ``params`` (``sig`` left out), in lower-case hex."""
    signed = "".join(
        f"&{name}={params[name].replace('&', '_').replace('=', '_')}"
        for name in sorted(params)
        if name != "sig"
    ).encode("utf-8")
    if method == "md5hash":
        return hashlib.md5(signed + secret.encode("utf-8"), usedforsecurity=False).hexdigest()
    return hmac.new(secret.encode("utf-8"), signed, method).hexdigest()


def receipt_fields(request: CallbackRequest) -> dict[str, str]:
    """A receipt's parameters, from the query (GET), a JSON object or a form (POST)."""
    if request.method.upper() == "GET":
        fields = query_fields(PROVIDER, request.url)
    elif "json" in (request.header("content-type") or ""):
        return {
            str(name): "" if value is None else str(value)
            for name, value in json_object(PROVIDER, request.body).items()
        }
    else:
        fields = form_fields(PROVIDER, request.body)
    return {name: values[0] for name, values in fields.items()}


def parse_receipt(
    request: CallbackRequest,
    *,
    api_key: str,
    signature_secret: str | None,
    method: SignatureMethod,
) -> ParsedCallback:
    """Verify a signed delivery receipt and normalize its status."""
    secret = require_secret(PROVIDER, signature_secret, "signature_secret")
    params = receipt_fields(request)
    signature = params.get("sig")
    if not signature:
        raise CallbackRejectedError(PROVIDER, "missing sig parameter (signed webhooks disabled?)")
    expected = compute_signature(params, secret, method)
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise CallbackRejectedError(PROVIDER, "sig does not match")
    signed_at = fresh_timestamp(PROVIDER, params.get("timestamp"))
    if params.get("api-key") not in (None, api_key):
        raise CallbackRejectedError(PROVIDER, "receipt is for another API key")
    status = params.get("status", "").lower()
    kind = STATUSES.get(status)
    if kind is None:
        return ParsedCallback()
    message_id = params.get("messageId")
    if not message_id:
        raise CallbackRejectedError(PROVIDER, "receipt has no messageId", unreadable=True)
    code = params.get("err-code", "")
    meaning, suppress = ERROR_CODES.get(code, ("", False))
    failed = kind is DeliveryEventKind.UNDELIVERED
    reason = None
    if failed:
        reason = f"{status} ({code}: {meaning})" if meaning else f"{status} ({code or '-'})"
    msisdn = params.get("msisdn")
    event = DeliveryEvent(
        kind=kind,
        provider_message_id=message_id,
        occurred_at=_message_time(params.get("message-timestamp")) or signed_at,
        event_id=digest_event_id(PROVIDER, message_id, status, params.get("scts", "")),
        recipient=f"+{msisdn}" if msisdn and msisdn.isdigit() else msisdn,
        suppress=failed and suppress,
        reason=reason,
    )
    return ParsedCallback(events=(event,))


def _message_time(value: str | None) -> datetime | None:
    """``message-timestamp`` (``2020-01-01 12:00:00``, UTC), or ``None``."""
    try:
        return datetime.strptime(value or "", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None

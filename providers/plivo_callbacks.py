"""Plivo message status callbacks: https://www.plivo.com/docs/messaging/api/message/message-status-callbacks

Plivo calls the send's ``url`` at each status change, with ``MessageUUID``, ``To``, ``From``,
``Status``, ``ErrorCode`` (on ``failed`` and ``undelivered``), ``DeliveryReportTime`` and more, as
a form (POST, the default) or as query parameters (GET). It signs the call with the Auth Token
(https://www.plivo.com/docs/messaging/concepts/signature-validation), as plivo-python's
``validate_v3_signature`` checks it: ``X-Plivo-Signature-V3`` is the base64 HMAC-SHA256 of
``"{signed URL}.{X-Plivo-Signature-V3-Nonce}"``. The signed URL is the URL without its query,
then ``?`` and the query's parameters sorted as ``name=value`` joined by ``&``; for a POST with
parameters the ``?`` is always there, a ``.`` follows a non-empty query, and then every POST
parameter sorted by name, each name directly followed by its value. The header may list several
signatures separated by commas; one match is enough.

The scheme has no timestamp (the nonce only makes each signature unique), so the event id is a
digest of (``MessageUUID``, ``Status``): a replayed callback is a duplicate the dispatcher drops.

Statuses mapped: ``delivered`` -> delivered, ``read`` (WhatsApp) -> opened, ``undelivered``,
``failed`` and ``rejected`` -> undelivered. Dropped: ``queued``, ``sent``, and any other.
``ErrorCode`` values that say the number must not be sent to again suppress it
(https://www.plivo.com/docs/messaging/troubleshooting/error-codes): 50 invalid destination
number, 70 destination permanently unavailable, 200 recipient replied STOP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from urllib.parse import urlparse, urlunparse

from providers.callbacks import (
    CallbackRejectedError,
    CallbackRequest,
    DeliveryEvent,
    DeliveryEventKind,
    ParsedCallback,
)
from providers.sms_callbacks import (
    Fields,
    digest_event_id,
    first,
    form_fields,
    query_fields,
    received_at,
    require_header,
)

PROVIDER = "plivo"
SIGNATURE_HEADER = "X-Plivo-Signature-V3"
NONCE_HEADER = "X-Plivo-Signature-V3-Nonce"

STATUSES: dict[str, DeliveryEventKind] = {
    "delivered": DeliveryEventKind.DELIVERED,
    "read": DeliveryEventKind.OPENED,
    "undelivered": DeliveryEventKind.UNDELIVERED,
    "failed": DeliveryEventKind.UNDELIVERED,
    "rejected": DeliveryEventKind.UNDELIVERED,
}

#: ``ErrorCode`` of a failed message: code -> (meaning, whether the number is suppressed).
ERROR_CODES: dict[str, tuple[str, bool]] = {
    "10": ("invalid message", False),
    "20": ("network error", False),
    "30": ("spam detected", False),
    "40": ("invalid source number", False),
    "50": ("invalid destination number", True),
    "60": ("loop detected", False),
    "70": ("destination permanently unavailable", True),
    "80": ("destination temporarily unavailable", False),
    "90": ("no route available", False),
    "100": ("prohibited by carrier", False),
    "110": ("message too long", False),
    "200": ("recipient replied STOP to this sender", True),
    "300": ("failed to dispatch message", False),
    "420": ("message expired", False),
    "900": ("insufficient credit", False),
    "910": ("account disabled", False),
    "1000": ("unknown error", False),
}


def signed_url(method: str, url: str, post_fields: Fields) -> str:
    """The string plivo-python's ``construct_get_url`` / ``construct_post_url`` build."""
    parsed = urlparse(url)
    base = urlunparse((parsed.scheme, parsed.netloc, parsed.path, "", "", ""))
    query = query_fields(PROVIDER, url)
    query_string = "&".join(
        f"{name}={value}" for name in sorted(query) for value in sorted(query[name])
    )
    if method.upper() == "GET" or not post_fields:
        return f"{base}?{query_string}" if query_string else base
    signed = f"{base}?{query_string}"
    if query_string:
        signed += "."
    return signed + "".join(
        f"{name}{value}" for name in sorted(post_fields) for value in sorted(post_fields[name])
    )


def compute_signature(
    auth_token: str, method: str, url: str, post_fields: Fields, nonce: str
) -> str:
    """The V3 signature of a request: base64 HMAC-SHA256 of the signed URL, ``.``, the nonce."""
    text = f"{signed_url(method, url, post_fields)}.{nonce}".encode()
    digest = hmac.new(auth_token.encode("utf-8"), text, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def parse_status_callback(request: CallbackRequest, auth_token: str) -> ParsedCallback:
    """Verify a status callback with the Auth Token and normalize its status."""
    header = require_header(PROVIDER, request.headers, SIGNATURE_HEADER)
    nonce = require_header(PROVIDER, request.headers, NONCE_HEADER)
    is_get = request.method.upper() == "GET"
    post_fields = {} if is_get else form_fields(PROVIDER, request.body)
    expected = compute_signature(auth_token, request.method, request.url, post_fields, nonce)
    if not any(
        hmac.compare_digest(expected.encode(), candidate.strip().encode())
        for candidate in header.split(",")
    ):
        raise CallbackRejectedError(PROVIDER, f"{SIGNATURE_HEADER} does not match")
    fields = query_fields(PROVIDER, request.url) if is_get else post_fields
    status = (first(fields, "Status") or "").lower()
    kind = STATUSES.get(status)
    if kind is None:
        return ParsedCallback()
    message_uuid = first(fields, "MessageUUID")
    if not message_uuid:
        raise CallbackRejectedError(PROVIDER, "callback has no MessageUUID", unreadable=True)
    failed = kind is DeliveryEventKind.UNDELIVERED
    code = first(fields, "ErrorCode") or ""
    meaning, suppress = ERROR_CODES.get(code, ("", False))
    reason = None
    if failed:
        reason = f"{status} ({code}: {meaning})" if meaning else f"{status} ({code or '-'})"
    event = DeliveryEvent(
        kind=kind,
        provider_message_id=message_uuid,
        occurred_at=_aware(first(fields, "DeliveryReportTime")) or received_at(),
        event_id=digest_event_id(PROVIDER, message_uuid, status),
        recipient=_e164(first(fields, "To")),
        suppress=failed and suppress,
        reason=reason,
    )
    return ParsedCallback(events=(event,))


def _aware(value: str | None) -> datetime | None:
    """A Plivo time with its offset; a time without one names no zone, so it is not used."""
    try:
        parsed = datetime.fromisoformat(value or "")
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _e164(number: str | None) -> str | None:
    """Plivo writes numbers without the ``+``; the dispatcher keeps them in E.164."""
    if number and number.isdigit():
        return f"+{number}"
    return number

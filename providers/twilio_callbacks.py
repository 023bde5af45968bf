"""Twilio message status callbacks: https://www.twilio.com/docs/messaging/guides/track-outbound-message-status

Twilio POSTs a form to the message's ``StatusCallback`` URL at each status change: ``MessageSid``,
``MessageStatus``, ``To``, ``From``, ``AccountSid``, ``ErrorCode`` (on ``undelivered`` and
``failed``) and a few more. It signs it as https://www.twilio.com/docs/usage/webhooks/webhooks-security
says and twilio-python's ``RequestValidator`` checks: ``X-Twilio-Signature`` is the base64
HMAC-SHA1, keyed with the account's Auth Token, of the full URL Twilio called followed by every
POST parameter sorted by name, each name directly followed by its value (a repeated name by each
of its values, sorted). Twilio does not always sign the URL as it was configured with respect to
the port, so, as the validator does, the signature is accepted for the URL both without its port
and with the scheme's default port added.

Twilio's scheme has no timestamp, so no replay window: the event id is a digest of
(``MessageSid``, status), which makes a replayed callback a duplicate the dispatcher drops.

Statuses mapped: ``delivered`` -> delivered, ``read`` (WhatsApp, RCS) -> opened, ``undelivered``
and ``failed`` -> undelivered. Dropped (no normalized name): ``accepted``, ``scheduled``,
``queued``, ``sending``, ``sent``, ``canceled``, ``receiving``, ``received`` and any other.
``ErrorCode`` values that say the number itself cannot receive SMS suppress it
(https://www.twilio.com/docs/api/errors): 30005 unknown destination handset, 30006 landline or
unreachable carrier, 21211 invalid 'To' number, 21614 not a mobile number, 21610 recipient
replied STOP. 30003 (handset switched off or out of coverage) is undelivered but not suppressed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import SplitResult, urlsplit

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
    received_at,
    require_header,
)

PROVIDER = "twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"

STATUSES: dict[str, DeliveryEventKind] = {
    "delivered": DeliveryEventKind.DELIVERED,
    "read": DeliveryEventKind.OPENED,
    "undelivered": DeliveryEventKind.UNDELIVERED,
    "failed": DeliveryEventKind.UNDELIVERED,
}

#: Error codes of a failed delivery: code -> (meaning, whether the number is suppressed).
ERROR_CODES: dict[str, tuple[str, bool]] = {
    "30003": ("unreachable destination handset", False),
    "30004": ("message blocked", False),
    "30005": ("unknown destination handset", True),
    "30006": ("landline or unreachable carrier", True),
    "30007": ("message filtered by the carrier", False),
    "30008": ("unknown error", False),
    "21211": ("invalid 'To' phone number", True),
    "21610": ("recipient has unsubscribed (replied STOP)", True),
    "21614": ("'To' number is not a valid mobile number", True),
}


def compute_signature(auth_token: str, url: str, fields: Fields) -> str:
    """Twilio's signature of a request: base64 HMAC-SHA1 over the URL and the sorted fields."""
    signed = url
    for name in sorted(set(fields)):
        for value in sorted(set(fields[name])):
            signed += name + value
    digest = hmac.new(auth_token.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def url_variants(url: str) -> tuple[str, str]:
    """The URL without its port and with the scheme's default port, as Twilio may sign either."""
    parts = urlsplit(url)
    return _without_port(parts), _with_port(parts)


def parse_status_callback(request: CallbackRequest, auth_token: str) -> ParsedCallback:
    """Verify a status callback with the account's Auth Token and normalize its status."""
    signature = require_header(PROVIDER, request.headers, SIGNATURE_HEADER)
    fields = form_fields(PROVIDER, request.body)
    if not any(
        hmac.compare_digest(compute_signature(auth_token, url, fields).encode(), signature.encode())
        for url in url_variants(request.url)
    ):
        raise CallbackRejectedError(PROVIDER, f"{SIGNATURE_HEADER} does not match")
    status = (first(fields, "MessageStatus") or first(fields, "SmsStatus") or "").lower()
    kind = STATUSES.get(status)
    if kind is None:
        return ParsedCallback()
    message_sid = first(fields, "MessageSid") or first(fields, "SmsSid")
    if not message_sid:
        raise CallbackRejectedError(PROVIDER, "callback has no MessageSid", unreadable=True)
    code = first(fields, "ErrorCode")
    meaning, suppress = ERROR_CODES.get(code or "", ("", False))
    reason = None
    if code:
        reason = f"{code}: {meaning}" if meaning else code
    event = DeliveryEvent(
        kind=kind,
        provider_message_id=message_sid,
        occurred_at=received_at(),
        event_id=digest_event_id(PROVIDER, message_sid, status),
        recipient=first(fields, "To"),
        suppress=kind is DeliveryEventKind.UNDELIVERED and suppress,
        reason=reason,
    )
    return ParsedCallback(events=(event,))


def _without_port(parts: SplitResult) -> str:
    if parts.port is None:
        return parts.geturl()
    return parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]).geturl()


def _with_port(parts: SplitResult) -> str:
    if parts.port is not None:
        return parts.geturl()
    port = 443 if parts.scheme == "https" else 80
    return parts._replace(netloc=f"{parts.netloc}:{port}").geturl()

"""Telnyx messaging webhooks: https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks

Telnyx POSTs JSON events ``{"data": {"event_type", "id", "occurred_at", "payload"}, "meta"}``
and signs them with Ed25519: ``telnyx-signature-ed25519`` is the base64 signature of
``"{telnyx-timestamp}|{raw body}"``, verifiable with the account's public key (base64, shown in
the portal under API keys), as telnyx-python's ``Webhook.verify`` checks it. The timestamp is Unix
seconds; one further than :data:`~providers.callbacks.CALLBACK_TOLERANCE_SECONDS` from our clock
is refused. ``data.id`` is the event id; ``data.payload.id`` the message id the send answered.

Mapped: ``message.finalized`` per recipient in ``payload.to``: ``delivered`` -> delivered;
``delivery_failed``, ``sending_failed`` and ``expired`` -> undelivered, with the first of
``payload.errors`` as the reason. Error codes that say the number cannot receive messages
suppress it (https://developers.telnyx.com/docs/messaging/messages/error-codes): 40001 not
routable (landline), 40012 invalid destination number, 40300 recipient replied STOP, 40310
invalid 'to' address. Dropped: ``message.sent``, ``message.received``, every other event type,
and recipient statuses without a normalized name (``queued``, ``sending``, ``sent``,
``delivery_unconfirmed``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from providers.callbacks import (
    CallbackRejectedError,
    CallbackRequest,
    DeliveryEvent,
    DeliveryEventKind,
    ParsedCallback,
)
from providers.sms_callbacks import (
    fresh_timestamp,
    json_object,
    parse_time,
    require_header,
    require_secret,
)

PROVIDER = "telnyx"
SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"

STATUSES: dict[str, DeliveryEventKind] = {
    "delivered": DeliveryEventKind.DELIVERED,
    "delivery_failed": DeliveryEventKind.UNDELIVERED,
    "sending_failed": DeliveryEventKind.UNDELIVERED,
    "expired": DeliveryEventKind.UNDELIVERED,
}

#: Delivery error codes after which the number is not sent to again.
SUPPRESSING_CODES = frozenset({"40001", "40012", "40300", "40310"})


def load_public_key(value: str) -> Ed25519PublicKey | None:
    """The Ed25519 key of a base64 public key as Telnyx shows it, or ``None`` if it is not one."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        return None


def parse_webhook(request: CallbackRequest, public_key: str | None) -> ParsedCallback:
    """Verify a webhook with the account's public key and normalize a finalized message."""
    key = load_public_key(require_secret(PROVIDER, public_key, "public_key"))
    if key is None:
        raise CallbackRejectedError(
            PROVIDER, "credentials field 'public_key' is not an Ed25519 key"
        )
    signature = require_header(PROVIDER, request.headers, SIGNATURE_HEADER)
    timestamp = require_header(PROVIDER, request.headers, TIMESTAMP_HEADER)
    try:
        key.verify(base64.b64decode(signature), timestamp.encode() + b"|" + request.body)
    except (binascii.Error, ValueError, InvalidSignature):
        raise CallbackRejectedError(PROVIDER, f"{SIGNATURE_HEADER} does not match") from None
    signed_at = fresh_timestamp(PROVIDER, timestamp)
    data = json_object(PROVIDER, request.body).get("data")
    if not isinstance(data, dict) or data.get("event_type") != "message.finalized":
        return ParsedCallback()
    payload = data.get("payload")
    if not isinstance(payload, dict) or not payload.get("id") or not data.get("id"):
        raise CallbackRejectedError(PROVIDER, "event has no data.id or payload.id", unreadable=True)
    recipients = [entry for entry in payload.get("to") or [] if isinstance(entry, dict)]
    occurred_at = parse_time(payload.get("completed_at")) or parse_time(data.get("occurred_at"))
    code, reason = _first_error(payload)
    events = []
    for recipient in recipients:
        kind = STATUSES.get(str(recipient.get("status") or ""))
        if kind is None:
            continue
        number = recipient.get("phone_number")
        event_id = str(data["id"]) if len(recipients) == 1 else f"{data['id']}:{number}"
        failed = kind is DeliveryEventKind.UNDELIVERED
        events.append(
            DeliveryEvent(
                kind=kind,
                provider_message_id=str(payload["id"]),
                occurred_at=occurred_at or signed_at,
                event_id=event_id,
                recipient=str(number) if number else None,
                suppress=failed and code in SUPPRESSING_CODES,
                reason=(reason or str(recipient.get("status"))) if failed else None,
            )
        )
    return ParsedCallback(events=tuple(events))


def _first_error(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """The first error's code and its ``code: title`` text, as Telnyx reports a failure."""
    errors = payload.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else None
    if not isinstance(first, dict):
        return None, None
    code = str(first.get("code")) if first.get("code") is not None else None
    title = first.get("title") or first.get("detail") or ""
    text = ": ".join(part for part in (code, str(title)) if part)
    return code, text or None

"""SendGrid's signed Event Webhook: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event

SendGrid POSTs a JSON array of events and, with the Signed Event Webhook on, signs each request
with ECDSA P-256 / SHA-256 over ``X-Twilio-Email-Event-Webhook-Timestamp`` followed by the raw
body; the base64 DER signature is in ``X-Twilio-Email-Event-Webhook-Signature``. The
verification key is the base64 DER (SubjectPublicKeyInfo) public key SendGrid shows under the
webhook's settings; it is public, so it is a plain string credential.
(https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features)

``sg_message_id`` is the id SendGrid answered the send with in ``X-Message-Id`` (what the
provider stores), followed by ``.filter...`` (the message's path through SendGrid's filters):
the prefix before ``.filter`` is the delivery's message id.

Mapped: ``delivered``, ``open``, ``click``, ``bounce`` (``type`` ``bounce`` is a hard bounce,
``blocked`` a soft one), ``dropped`` (undelivered; suppressed when SendGrid dropped it for the
address: ``Bounced Address``, ``Spam Reporting Address``, ``Invalid``), ``spamreport``.
Dropped (no normalized name): ``processed``, ``deferred`` (SendGrid retries itself),
``unsubscribe``, ``group_unsubscribe``, ``group_resubscribe``, and anything newer.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from providers.callbacks import (
    BounceKind,
    CallbackRejectedError,
    CallbackRequest,
    DeliveryEvent,
    DeliveryEventKind,
    ParsedCallback,
)
from providers.email_callbacks import (
    b64decode,
    check_timestamp,
    configured,
    event_digest,
    from_unix,
    json_body,
    received_now,
    required_header,
    text_or_none,
    unreadable,
)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

_KINDS = {
    "delivered": DeliveryEventKind.DELIVERED,
    "open": DeliveryEventKind.OPENED,
    "click": DeliveryEventKind.CLICKED,
    "bounce": DeliveryEventKind.BOUNCED,
    "dropped": DeliveryEventKind.UNDELIVERED,
    "spamreport": DeliveryEventKind.COMPLAINED,
}
#: ``dropped`` reasons that say the address itself must not be sent to.
_SUPPRESSING_DROPS = frozenset({"bounced address", "spam reporting address", "invalid"})


def load_verification_key(value: str) -> ec.EllipticCurvePublicKey:
    """The P-256 public key from SendGrid's base64 DER text (a PEM block is taken too)."""
    text = value.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(b64decode("sendgrid", text, "the verification key"))
    except (ValueError, TypeError, CallbackRejectedError):
        raise ValueError("must be the base64 public key SendGrid shows") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("must be an ECDSA P-256 public key")
    return key


def message_id(sg_message_id: str) -> str:
    """The ``X-Message-Id`` an ``sg_message_id`` starts with."""
    prefix, _, _ = sg_message_id.partition(".filter")
    return prefix


def parse(provider: str, request: CallbackRequest, verification_key: str | None) -> ParsedCallback:
    try:
        key = load_verification_key(configured(provider, verification_key))
    except ValueError:
        raise CallbackRejectedError(provider, "the verification key is not a P-256 key") from None
    signature = b64decode(
        provider, required_header(provider, request, SIGNATURE_HEADER), "the signature"
    )
    timestamp = required_header(provider, request, TIMESTAMP_HEADER)
    try:
        key.verify(signature, timestamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise CallbackRejectedError(provider, "wrong signature") from None
    check_timestamp(provider, timestamp)
    document = json_body(provider, request.body)
    if not isinstance(document, list):
        raise unreadable(provider, "the body is not a JSON array of events")
    events = (_event(item) for item in document if isinstance(item, dict))
    return ParsedCallback(events=tuple(event for event in events if event is not None))


def _event(item: dict[str, Any]) -> DeliveryEvent | None:
    kind = _KINDS.get(str(item.get("event")))
    sg_message_id = text_or_none(item.get("sg_message_id"))
    if kind is None or sg_message_id is None:
        return None
    provider_message_id = message_id(sg_message_id)
    occurred_at = from_unix(item.get("timestamp")) or received_now()
    bounce: BounceKind | None = None
    suppress = kind is DeliveryEventKind.COMPLAINED
    reason = text_or_none(item.get("reason")) or text_or_none(item.get("response"))
    if kind is DeliveryEventKind.BOUNCED:
        # ``blocked``: the receiving server refused this message (content, reputation), not
        # the address; ``bounce`` (and older payloads without ``type``): the address.
        bounce = BounceKind.SOFT if item.get("type") == "blocked" else BounceKind.HARD
        suppress = bounce is BounceKind.HARD
        status = text_or_none(item.get("status"))
        if status and reason and status not in reason:
            reason = f"{status} {reason}"
    elif kind is DeliveryEventKind.UNDELIVERED:
        suppress = str(reason or "").strip().lower() in _SUPPRESSING_DROPS
    return DeliveryEvent(
        kind=kind,
        provider_message_id=provider_message_id,
        occurred_at=occurred_at,
        event_id=text_or_none(item.get("sg_event_id"))
        or event_digest(provider_message_id, kind, occurred_at),
        recipient=text_or_none(item.get("email")),
        bounce=bounce,
        suppress=suppress,
        reason=reason,
        url=text_or_none(item.get("url")) if kind is DeliveryEventKind.CLICKED else None,
    )

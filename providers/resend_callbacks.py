"""Resend's webhooks, delivered and signed by Svix: https://resend.com/docs/dashboard/webhooks/event-types

Each POST is one event, ``{"type": "email.delivered", "created_at", "data": {"email_id", "to",
...}}``, with the Svix headers (https://docs.svix.com/receiving/verifying-payloads/how-manual):
``svix-id`` (the message id, the same on every retry), ``svix-timestamp`` (Unix seconds of this
attempt) and ``svix-signature``, a space-separated list of ``v1,<base64>`` signatures (several
while a secret is rotated). A ``v1`` signature is the HMAC-SHA256 of ``{id}.{timestamp}.{body}``
keyed with the base64-decoded part of the endpoint's ``whsec_...`` signing secret. ``svix-id``
is the event id; ``data.email_id`` is the ``id`` the send stored.

Mapped: ``email.delivered``, ``email.opened``, ``email.clicked`` (``data.click.link``),
``email.bounced`` (``data.bounce.type`` ``Permanent`` is a hard bounce, else soft),
``email.complained``, ``email.failed`` (undelivered: Resend gave up sending it). Dropped (no
normalized name): ``email.sent``, ``email.scheduled``, ``email.delivery_delayed`` (Resend retries
itself), the ``contact.*`` and ``domain.*`` events, and anything newer.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from pydantic import SecretStr

from providers.callbacks import (
    BounceKind,
    CallbackRejectedError,
    CallbackRequest,
    DeliveryEvent,
    DeliveryEventKind,
    ParsedCallback,
)
from providers.email_callbacks import (
    check_timestamp,
    configured,
    from_iso,
    hmac_sha256,
    json_body,
    mapping,
    received_now,
    required_header,
    text_or_none,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, not a secret)

_KINDS = {
    "email.delivered": DeliveryEventKind.DELIVERED,
    "email.opened": DeliveryEventKind.OPENED,
    "email.clicked": DeliveryEventKind.CLICKED,
    "email.bounced": DeliveryEventKind.BOUNCED,
    "email.complained": DeliveryEventKind.COMPLAINED,
    "email.failed": DeliveryEventKind.UNDELIVERED,
}


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` signing secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("must be the signing secret Resend shows, starting with whsec_")
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be whsec_ followed by base64") from None


def verify_svix(provider: str, request: CallbackRequest, secret: str) -> str:
    """Check the Svix signature and timestamp; the ``svix-id``."""
    message_id = required_header(provider, request, "svix-id")
    timestamp = required_header(provider, request, "svix-timestamp")
    signatures = required_header(provider, request, "svix-signature")
    try:
        key = secret_key(secret)
    except ValueError:
        raise CallbackRejectedError(provider, "the webhook secret is not a whsec_ secret") from None
    signed = f"{message_id}.{timestamp}.".encode() + request.body
    expected = base64.b64encode(hmac_sha256(key, signed))
    sent = [
        value.encode()
        for version, _, value in (s.partition(",") for s in signatures.split())
        if version == "v1"
    ]
    if not any(hmac.compare_digest(value, expected) for value in sent):
        raise CallbackRejectedError(provider, "wrong signature")
    check_timestamp(provider, timestamp)
    return message_id


def parse(provider: str, request: CallbackRequest, secret: SecretStr | None) -> ParsedCallback:
    svix_id = verify_svix(provider, request, configured(provider, secret))
    event = _event(mapping(json_body(provider, request.body)), svix_id)
    return ParsedCallback(events=(event,) if event else ())


def _event(document: dict[str, Any], svix_id: str) -> DeliveryEvent | None:
    kind = _KINDS.get(str(document.get("type")))
    data = mapping(document.get("data"))
    message_id = text_or_none(data.get("email_id"))
    if kind is None or message_id is None:
        return None
    to = data.get("to")
    bounce: BounceKind | None = None
    reason: str | None = None
    url: str | None = None
    if kind is DeliveryEventKind.BOUNCED:
        details = mapping(data.get("bounce"))
        hard = details.get("type") == "Permanent"
        bounce = BounceKind.HARD if hard else BounceKind.SOFT
        types = "/".join(str(p) for p in (details.get("type"), details.get("subType")) if p)
        message = text_or_none(details.get("message"))
        reason = ": ".join(part for part in (types, message) if part) or None
    elif kind is DeliveryEventKind.UNDELIVERED:
        reason = text_or_none(mapping(data.get("failed")).get("reason"))
    elif kind is DeliveryEventKind.CLICKED:
        url = text_or_none(mapping(data.get("click")).get("link"))
    return DeliveryEvent(
        kind=kind,
        provider_message_id=message_id,
        occurred_at=from_iso(document.get("created_at")) or received_now(),
        event_id=svix_id,
        recipient=str(to[0]) if isinstance(to, list) and to else text_or_none(to),
        bounce=bounce,
        suppress=bounce is BounceKind.HARD or kind is DeliveryEventKind.COMPLAINED,
        reason=reason,
        url=url,
    )

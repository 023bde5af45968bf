"""Mailgun's event webhooks: https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-payloads

Each POST is one JSON event, ``{"signature": {"timestamp", "token", "signature"}, "event-data":
{...}}``. The signature is the hex HMAC-SHA256 of ``timestamp`` followed by ``token``, keyed with
the account's HTTP webhook signing key (not the API key)
(https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks); it
covers no byte of ``event-data``, so the timestamp window is what keeps an old signature from
vouching for a forged event for long.

``event-data.message.headers.message-id`` is the Message-ID without its angle brackets; the send
stored the API's ``id``, the same id in brackets (``<20130503182626.18666.16540@example.com>``),
so the brackets are put back.

Mapped: ``delivered``, ``opened``, ``clicked``, ``failed`` (``severity`` ``permanent`` is a hard
bounce, ``temporary`` a soft one), ``complained``. Dropped (no normalized name): ``accepted``,
``rejected`` (refused before sending: the send already failed), ``unsubscribed``, ``stored``,
and anything newer.
"""

from __future__ import annotations

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
    event_digest,
    from_unix,
    hmac_sha256,
    json_body,
    mapping,
    received_now,
    text_or_none,
    unreadable,
)

_KINDS = {
    "delivered": DeliveryEventKind.DELIVERED,
    "opened": DeliveryEventKind.OPENED,
    "clicked": DeliveryEventKind.CLICKED,
    "failed": DeliveryEventKind.BOUNCED,
    "complained": DeliveryEventKind.COMPLAINED,
}


def message_id(header: str) -> str:
    """The API's ``id`` for a Message-ID header value: in angle brackets."""
    bare = header.strip().removeprefix("<").removesuffix(">")
    return f"<{bare}>"


def parse(provider: str, request: CallbackRequest, signing_key: SecretStr | None) -> ParsedCallback:
    key = configured(provider, signing_key)
    document = json_body(provider, request.body)
    signature = document.get("signature") if isinstance(document, dict) else None
    if not isinstance(signature, dict):
        raise CallbackRejectedError(provider, "missing signature object")
    timestamp, token, sent = (
        str(signature.get(name) or "") for name in ("timestamp", "token", "signature")
    )
    if not (timestamp and token and sent):
        raise CallbackRejectedError(provider, "incomplete signature object")
    expected = hmac_sha256(key.encode(), (timestamp + token).encode()).hex()
    if not hmac.compare_digest(sent.lower().encode(), expected.encode()):
        raise CallbackRejectedError(provider, "wrong signature")
    check_timestamp(provider, timestamp)
    data = document.get("event-data")
    if not isinstance(data, dict):
        raise unreadable(provider, "missing event-data object")
    event = _event(data)
    return ParsedCallback(events=(event,) if event else ())


def _event(data: dict[str, Any]) -> DeliveryEvent | None:
    kind = _KINDS.get(str(data.get("event")))
    header = text_or_none(mapping(mapping(data.get("message")).get("headers")).get("message-id"))
    if kind is None or header is None:
        return None
    provider_message_id = message_id(header)
    occurred_at = from_unix(data.get("timestamp")) or received_now()
    status = mapping(data.get("delivery-status"))
    bounce: BounceKind | None = None
    reason = text_or_none(status.get("message")) or text_or_none(status.get("description"))
    if kind is DeliveryEventKind.BOUNCED:
        permanent = data.get("severity") == "permanent"
        bounce = BounceKind.HARD if permanent else BounceKind.SOFT
        details = [
            text_or_none(status.get("code")),
            text_or_none(data.get("reason")),
            text_or_none(status.get("description")) or text_or_none(status.get("message")),
        ]
        reason = " ".join(part for part in details if part) or None
    return DeliveryEvent(
        kind=kind,
        provider_message_id=provider_message_id,
        occurred_at=occurred_at,
        event_id=text_or_none(data.get("id"))
        or event_digest(provider_message_id, kind, occurred_at),
        recipient=text_or_none(data.get("recipient")),
        bounce=bounce,
        suppress=bounce is BounceKind.HARD or kind is DeliveryEventKind.COMPLAINED,
        reason=reason,
        url=text_or_none(data.get("url")) if kind is DeliveryEventKind.CLICKED else None,
    )

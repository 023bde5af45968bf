"""Postmark's webhooks: https://postmarkapp.com/developer/webhooks/webhooks-overview

Postmark signs nothing: a webhook is authenticated by the HTTP basic auth credentials put in its
URL (``https://user:password@host/...``), which Postmark sends as ``Authorization: Basic``
(https://postmarkapp.com/developer/webhooks/webhooks-overview#protecting-your-webhook). The
integration's ``webhook_username`` / ``webhook_password`` must be configured and match. Nothing
is timestamped, so there is no replay window; a replayed event has the same ``event_id``.

One event per POST, told apart by ``RecordType``; ``MessageID`` is the id the send stored:

* ``Delivery`` -> delivered; ``Open`` -> opened; ``Click`` -> clicked (``OriginalLink``);
  ``SpamComplaint`` -> complained.
* ``Bounce`` -> bounced: hard (suppressed) for ``HardBounce``, ``BadEmailAddress``,
  ``ManuallyDeactivated``, or whenever Postmark deactivated the address (``Inactive``: it sends
  to it no more); soft otherwise (``SoftBounce``, ``Transient``, ``DnsError``, ``Blocked``...).
  Bounce types that are no failure (``AutoResponder``, ``AddressChange``, ``Subscribe``,
  ``Unsubscribe``, ``ChallengeVerification``, ``OpenRelayTest``) are dropped.

Dropped: ``SubscriptionChange`` and any other record type.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from providers.callbacks import (
    BounceKind,
    CallbackRequest,
    DeliveryEvent,
    DeliveryEventKind,
    ParsedCallback,
)
from providers.email_callbacks import (
    check_basic_auth,
    event_digest,
    from_iso,
    json_body,
    mapping,
    received_now,
    text_or_none,
)

_KINDS = {
    "Delivery": DeliveryEventKind.DELIVERED,
    "Open": DeliveryEventKind.OPENED,
    "Click": DeliveryEventKind.CLICKED,
    "Bounce": DeliveryEventKind.BOUNCED,
    "SpamComplaint": DeliveryEventKind.COMPLAINED,
}
#: When each record type happened.
_TIME_FIELDS = {
    "Delivery": "DeliveredAt",
    "Open": "ReceivedAt",
    "Click": "ReceivedAt",
    "Bounce": "BouncedAt",
    "SpamComplaint": "BouncedAt",
}
_HARD_BOUNCES = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
_NOT_FAILURES = frozenset(
    {
        "AutoResponder",
        "AddressChange",
        "Subscribe",
        "Unsubscribe",
        "ChallengeVerification",
        "OpenRelayTest",
    }
)


def parse(
    provider: str, request: CallbackRequest, username: str | None, password: SecretStr | None
) -> ParsedCallback:
    check_basic_auth(provider, request, username, password)
    event = _event(mapping(json_body(provider, request.body)))
    return ParsedCallback(events=(event,) if event else ())


def _event(record: dict[str, Any]) -> DeliveryEvent | None:
    record_type = str(record.get("RecordType"))
    kind = _KINDS.get(record_type)
    message_id = text_or_none(record.get("MessageID"))
    bounce_type = str(record.get("Type") or "")
    if kind is None or message_id is None:
        return None
    if kind is DeliveryEventKind.BOUNCED and bounce_type in _NOT_FAILURES:
        return None
    occurred_at = from_iso(record.get(_TIME_FIELDS[record_type])) or received_now()
    bounce: BounceKind | None = None
    reason = text_or_none(record.get("Details"))
    if kind is DeliveryEventKind.BOUNCED:
        hard = bounce_type in _HARD_BOUNCES or record.get("Inactive") is True
        bounce = BounceKind.HARD if hard else BounceKind.SOFT
        reason = ": ".join(
            part for part in (bounce_type, text_or_none(record.get("Description")), reason) if part
        )
    # A bounce (and a complaint, which Postmark records as one) has its own id.
    record_id = text_or_none(record.get("ID"))
    return DeliveryEvent(
        kind=kind,
        provider_message_id=message_id,
        occurred_at=occurred_at,
        event_id=f"postmark-bounce:{record_id}"
        if record_id
        else event_digest(message_id, kind, occurred_at),
        recipient=text_or_none(record.get("Recipient")) or text_or_none(record.get("Email")),
        bounce=bounce,
        suppress=bounce is BounceKind.HARD or kind is DeliveryEventKind.COMPLAINED,
        reason=reason or None,
        url=text_or_none(record.get("OriginalLink")) if kind is DeliveryEventKind.CLICKED else None,
    )

"""Brevo's transactional webhooks: https://developers.brevo.com/docs/transactional-webhooks

Brevo signs nothing. A webhook can carry HTTP basic auth or a bearer token (``auth`` when the
webhook is created, https://developers.brevo.com/reference/createwebhook); one of them must be
configured on the integration (``webhook_username``/``webhook_password`` or ``webhook_token``),
and the ``Authorization`` header must match it, else every callback is refused. Nothing is
signed with a time, so there is no replay window; a replayed event has the same ``event_id``.

One event per POST: ``{"event", "email", "message-id", "ts_event", "ts_epoch", "reason",
"link", ...}``; ``message-id`` is the ``messageId`` the send stored (``<...@smtp-relay...>``).
Brevo gives no event id (``id`` is the webhook's), so the id is a digest of the message id,
the event and ``ts_epoch`` (milliseconds).

Mapped: ``delivered``; ``opened``, ``unique_opened``, ``proxy_open``, ``unique_proxy_open``
(opened); ``click``; ``hard_bounce`` (hard, suppressed); ``soft_bounce`` (soft); ``spam``
(complained); ``invalid_email`` and ``blocked`` (undelivered and suppressed: Brevo will not send
to the address). Dropped: ``request`` (sent), ``deferred`` (Brevo retries itself),
``unsubscribed``, ``error``, and anything newer.
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
    bracketed,
    check_authorization,
    event_digest,
    from_unix,
    json_body,
    mapping,
    received_now,
    text_or_none,
)

_KINDS: dict[str, tuple[DeliveryEventKind, BounceKind | None, bool]] = {
    "delivered": (DeliveryEventKind.DELIVERED, None, False),
    "opened": (DeliveryEventKind.OPENED, None, False),
    "unique_opened": (DeliveryEventKind.OPENED, None, False),
    "proxy_open": (DeliveryEventKind.OPENED, None, False),
    "unique_proxy_open": (DeliveryEventKind.OPENED, None, False),
    "click": (DeliveryEventKind.CLICKED, None, False),
    "hard_bounce": (DeliveryEventKind.BOUNCED, BounceKind.HARD, True),
    "soft_bounce": (DeliveryEventKind.BOUNCED, BounceKind.SOFT, False),
    "spam": (DeliveryEventKind.COMPLAINED, None, True),
    "invalid_email": (DeliveryEventKind.UNDELIVERED, None, True),
    "blocked": (DeliveryEventKind.UNDELIVERED, None, True),
}


def parse(
    provider: str,
    request: CallbackRequest,
    *,
    username: str | None,
    password: SecretStr | None,
    token: SecretStr | None,
) -> ParsedCallback:
    check_authorization(provider, request, username=username, password=password, token=token)
    event = _event(mapping(json_body(provider, request.body)))
    return ParsedCallback(events=(event,) if event else ())


def _event(item: dict[str, Any]) -> DeliveryEvent | None:
    name = str(item.get("event"))
    mapped = _KINDS.get(name)
    header = text_or_none(item.get("message-id"))
    if mapped is None or header is None:
        return None
    kind, bounce, suppress = mapped
    message_id = bracketed(header)
    epoch_ms = item.get("ts_epoch")
    occurred_at = (
        (from_unix(epoch_ms / 1000) if isinstance(epoch_ms, int | float) else None)
        or from_unix(item.get("ts_event"))
        or received_now()
    )
    return DeliveryEvent(
        kind=kind,
        provider_message_id=message_id,
        occurred_at=occurred_at,
        event_id=event_digest(message_id, kind, occurred_at) + f":{name}",
        recipient=text_or_none(item.get("email")),
        bounce=bounce,
        suppress=suppress,
        reason=text_or_none(item.get("reason")),
        url=text_or_none(item.get("link")) if kind is DeliveryEventKind.CLICKED else None,
    )

"""Mailjet's event webhooks: https://dev.mailjet.com/email/guides/webhooks/

Mailjet signs nothing: the event URL carries HTTP basic auth (``https://user:password@host/...``,
the protection Mailjet documents), sent as ``Authorization: Basic``; the integration's
``webhook_username``/``webhook_password`` must be configured and match, else every callback is
refused. Nothing is signed with a time, so there is no replay window; a replayed event has the
same ``event_id``.

A POST is one event object, or an array of them when the webhook groups events. ``MessageID``
is the ``MessageID`` the send stored (``Message_GUID``, the send's ``MessageUUID``, when an event
has no ``MessageID``). Mailjet gives events no id, so the id is a digest of the message id, the
event and its ``time``.

Mapped: ``sent`` (delivered: the recipient's server accepted it), ``open``, ``click``,
``bounce`` (``hard_bounce`` true is a hard bounce, else soft), ``spam`` (complained),
``blocked`` (undelivered; suppressed when ``error_related_to`` is ``recipient``, e.g.
``preblocked`` or ``user unknown``). Dropped: ``unsub`` and anything newer.
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
    from_unix,
    json_body,
    received_now,
    text_or_none,
)

_KINDS = {
    "sent": DeliveryEventKind.DELIVERED,
    "open": DeliveryEventKind.OPENED,
    "click": DeliveryEventKind.CLICKED,
    "bounce": DeliveryEventKind.BOUNCED,
    "spam": DeliveryEventKind.COMPLAINED,
    "blocked": DeliveryEventKind.UNDELIVERED,
}


def parse(
    provider: str, request: CallbackRequest, username: str | None, password: SecretStr | None
) -> ParsedCallback:
    check_basic_auth(provider, request, username, password)
    document = json_body(provider, request.body)
    items = document if isinstance(document, list) else [document]
    events = (_event(item) for item in items if isinstance(item, dict))
    return ParsedCallback(events=tuple(event for event in events if event is not None))


def message_id(item: dict[str, Any]) -> str | None:
    """The id the send stored: ``MessageID``, else ``Message_GUID``."""
    return text_or_none(item.get("MessageID") or None) or text_or_none(item.get("Message_GUID"))


def _event(item: dict[str, Any]) -> DeliveryEvent | None:
    name = str(item.get("event"))
    kind = _KINDS.get(name)
    provider_message_id = message_id(item)
    if kind is None or provider_message_id is None:
        return None
    occurred_at = from_unix(item.get("time")) or received_now()
    error = " ".join(
        str(part) for part in (item.get("error_related_to"), item.get("error")) if part
    )
    reason = error or text_or_none(item.get("smtp_reply"))
    bounce: BounceKind | None = None
    suppress = kind is DeliveryEventKind.COMPLAINED
    if kind is DeliveryEventKind.BOUNCED:
        bounce = BounceKind.HARD if item.get("hard_bounce") is True else BounceKind.SOFT
        suppress = bounce is BounceKind.HARD
        comment = text_or_none(item.get("comment"))
        reason = ": ".join(part for part in (error, comment) if part) or None
    elif kind is DeliveryEventKind.UNDELIVERED:
        suppress = item.get("error_related_to") == "recipient"
    return DeliveryEvent(
        kind=kind,
        provider_message_id=provider_message_id,
        occurred_at=occurred_at,
        event_id=f"{event_digest(provider_message_id, kind, occurred_at)}:{name}",
        recipient=text_or_none(item.get("email")),
        bounce=bounce,
        suppress=suppress,
        reason=reason,
        url=text_or_none(item.get("url")) if kind is DeliveryEventKind.CLICKED else None,
    )

"""What a provider tells us after ``sent``: delivery callbacks, verified and normalized.

Providers call back with delivery statuses (SendGrid's Event Webhook, Twilio's status callbacks,
Amazon SES through SNS, ...). Each provider module owns its parser and its signature check, as it
owns its request building: :meth:`providers.base.Provider.parse_callback` takes the request as
received (:class:`CallbackRequest`: bytes and headers, nothing decoded yet, since signatures are
over the raw bytes) and the integration's decrypted credentials, and answers the normalized events
(:class:`ParsedCallback`) or raises :class:`CallbackRejectedError`. It never touches the
database; the dispatcher (``dispatcher.lifecycle``) applies the events, de-duplicates them by
:attr:`DeliveryEvent.event_id`, and suppresses addresses.

The normalized statuses, in the order a message lives them::

    delivered     the recipient's server or handset accepted it
    opened        an open was tracked (email pixel, read receipt)
    clicked       a tracked link was followed (``url``)
    bounced       refused by the recipient's server: ``bounce`` is ``hard`` (the address does
                  not exist: suppressed) or ``soft`` (a full mailbox, a greylist: may succeed later)
    complained    the recipient marked it as spam (suppressed)
    undelivered   the carrier or network gave up (an SMS to an unreachable handset); ``suppress``
                  when the provider says the number itself is invalid
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Characters of a provider's reason an event keeps.
MAX_REASON = 500
#: How far a signed callback's timestamp may be from our clock, in seconds, where the provider's
#: scheme has one: older is a replay, newer a clock the provider does not keep.
CALLBACK_TOLERANCE_SECONDS = 300


class DeliveryEventKind(enum.StrEnum):
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    UNDELIVERED = "undelivered"


class BounceKind(enum.StrEnum):
    HARD = "hard"
    SOFT = "soft"


class CallbackRequest(BaseModel):
    """A provider's callback as it reached the server, before anything was decoded."""

    model_config = ConfigDict(frozen=True)

    method: str = "POST"
    #: The full URL the provider called, with its query string, as the provider sees it (Twilio
    #: and Plivo sign the URL; behind a proxy the dispatcher rebuilds it from its public base URL).
    url: str
    #: Header names in lower case.
    headers: Mapping[str, str] = Field(default_factory=dict)
    body: bytes = b""

    @field_validator("headers", mode="before")
    @classmethod
    def _lower_case_names(cls, value: Mapping[str, str]) -> dict[str, str]:
        return {str(name).lower(): str(header) for name, header in dict(value).items()}

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class DeliveryEvent(BaseModel):
    """One status a provider reported for one message it accepted."""

    model_config = ConfigDict(frozen=True)

    kind: DeliveryEventKind
    #: The id the provider answered the send with (``SendResult.provider_message_id``), as the
    #: callback names it: the dispatcher finds the delivery by it within the integration.
    provider_message_id: str
    #: When it happened, timezone-aware (the provider's time when it says, else the receipt's).
    occurred_at: datetime
    #: A stable id of this event for de-duplication: the provider's own event id where it has
    #: one, else a digest of what identifies the event (message id, kind, time).
    event_id: str
    #: The address the event concerns (email address or phone number), for suppression.
    recipient: str | None = None
    bounce: BounceKind | None = None
    #: Whether the address must not be sent to again (hard bounce, complaint, invalid number).
    suppress: bool = False
    #: The provider's reason or status code, as it gave it (no secret; cut to MAX_REASON).
    reason: str | None = None
    #: The followed link of a ``clicked`` event.
    url: str | None = None

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")
        return value

    @field_validator("reason")
    @classmethod
    def _bounded(cls, value: str | None) -> str | None:
        return None if value is None else value[:MAX_REASON]


class ParsedCallback(BaseModel):
    """What one callback request said: zero or more events (SendGrid and Mailgun batch them)."""

    model_config = ConfigDict(frozen=True)

    events: tuple[DeliveryEvent, ...] = ()
    #: Amazon SNS asks the endpoint to confirm a subscription by fetching this URL (through the
    #: URL guard); the dispatcher does it, the parser only reports it.
    confirm_subscription_url: str | None = None


class CallbackRejectedError(Exception):
    """The callback is not authentic (missing or wrong signature, stale timestamp) or cannot be
    read: answered 401 (400 for an unreadable body), and nothing is applied. The message names
    the reason, never a secret or the expected signature."""

    def __init__(self, provider: str, reason: str, *, unreadable: bool = False) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason
        self.unreadable = unreadable

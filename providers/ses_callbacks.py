"""Amazon SES events through Amazon SNS: https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html

SES publishes a configuration set's events (or an identity's feedback notifications) to an SNS
topic; SNS POSTs them to the subscribed HTTPS endpoint as JSON with ``Type`` ``Notification``,
``SubscriptionConfirmation`` or ``UnsubscribeConfirmation``.

Verification follows https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html:
the canonical string is ``Name\\nvalue\\n`` for each of ``Message``, ``MessageId``, ``Subject``
(when present), ``Timestamp``, ``TopicArn``, ``Type`` (a notification) or ``Message``,
``MessageId``, ``SubscribeURL``, ``Timestamp``, ``Token``, ``TopicArn``, ``Type`` (a
confirmation); ``Signature`` is its base64 RSA PKCS#1 v1.5 signature, SHA1 for
``SignatureVersion`` 1 and SHA256 for 2, by the certificate at ``SigningCertURL``. That URL must
be ``https://sns.<region>.amazonaws.com/....pem`` (``.amazonaws.com.cn`` in China), anything
else is refused before any request; the certificate is fetched with the dispatcher's client, must
be within its validity, and is cached per URL.

A valid SNS signature only proves the message came through SNS, from any AWS account's topic:
the integration's ``sns_topic_arn`` setting names the one topic accepted, and without it every
callback is refused. The subscription must not use raw message delivery: a raw message carries
no SNS signature, so it is refused.

SNS retries a failed delivery with the same signed message (its ``Timestamp`` is the publish
time) for at most an hour (the HTTP/S delivery policy's limit), so a notification is accepted up
to :data:`SNS_MAX_AGE_SECONDS` old, and no more than
:data:`providers.callbacks.CALLBACK_TOLERANCE_SECONDS` ahead; replays within that are the same
``event_id``.

``SubscriptionConfirmation`` answers ``confirm_subscription_url`` (``SubscribeURL``, which the
dispatcher fetches). A ``Notification``'s ``Message`` is the SES event JSON, ``eventType``
(event publishing) or ``notificationType`` (identity notifications): ``Delivery``, ``Bounce``
(``bounceType`` ``Permanent`` is a hard bounce, ``Transient`` and ``Undetermined`` soft), one
event per bounced recipient, ``Complaint``, ``Open``, ``Click``. ``mail.messageId`` is the
``MessageId`` SendEmail answered. Dropped: ``Send``, ``Reject`` (the send itself failed),
``Rendering Failure``, ``DeliveryDelay`` (SES retries itself), ``Subscription``, and
``UnsubscribeConfirmation``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from providers.callbacks import (
    CALLBACK_TOLERANCE_SECONDS,
    BounceKind,
    CallbackRejectedError,
    CallbackRequest,
    DeliveryEvent,
    DeliveryEventKind,
    ParsedCallback,
)
from providers.email_callbacks import (
    b64decode,
    from_iso,
    json_body,
    mapping,
    text_or_none,
    unreadable,
)
from providers.errors import ProviderError
from providers.http import send_request

#: The longest SNS retries one message (its HTTP/S delivery policy's limit), plus the window.
SNS_MAX_AGE_SECONDS = 3600 + CALLBACK_TOLERANCE_SECONDS
#: Signing certificates kept per provider instance (SNS has a few per region, rotated rarely).
MAX_CACHED_CERTIFICATES = 32

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

_KINDS = {
    "Delivery": DeliveryEventKind.DELIVERED,
    "Bounce": DeliveryEventKind.BOUNCED,
    "Complaint": DeliveryEventKind.COMPLAINED,
    "Open": DeliveryEventKind.OPENED,
    "Click": DeliveryEventKind.CLICKED,
}


class CertificateCache:
    """SNS signing keys by certificate URL, fetched once through the dispatcher's client."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[rsa.RSAPublicKey, datetime, datetime]] = {}

    async def key(
        self, provider: str, url: str, client: httpx.AsyncClient, now: datetime
    ) -> rsa.RSAPublicKey:
        cached = self._keys.get(url)
        if cached is None:
            cached = await _fetch(provider, url, client)
            if len(self._keys) >= MAX_CACHED_CERTIFICATES:
                self._keys.pop(next(iter(self._keys)))
            self._keys[url] = cached
        key, not_before, not_after = cached
        if not not_before <= now <= not_after:
            raise CallbackRejectedError(provider, "the signing certificate is not valid now")
        return key


def check_sns_url(provider: str, url: str, what: str) -> str:
    """``url`` when it is an https URL on an SNS host (``sns.<region>.amazonaws.com``)."""
    parts = urllib.parse.urlsplit(url)
    if (
        parts.scheme != "https"
        or not _SNS_HOST.match(parts.hostname or "")
        or parts.port not in (None, 443)
        or parts.username is not None
    ):
        raise CallbackRejectedError(provider, f"{what} is not an https URL of Amazon SNS")
    return url


async def _fetch(
    provider: str, url: str, client: httpx.AsyncClient
) -> tuple[rsa.RSAPublicKey, datetime, datetime]:
    try:
        response = await send_request(provider, client, "GET", url)
    except ProviderError:
        raise CallbackRejectedError(
            provider, "the signing certificate could not be fetched"
        ) from None
    if response.status_code != 200:
        raise CallbackRejectedError(provider, "the signing certificate could not be fetched")
    try:
        certificate = x509.load_pem_x509_certificate(response.content)
    except ValueError:
        raise CallbackRejectedError(provider, "the signing certificate is not PEM") from None
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise CallbackRejectedError(provider, "the signing certificate has no RSA key")
    return key, certificate.not_valid_before_utc, certificate.not_valid_after_utc


def canonical_string(envelope: dict[str, Any]) -> bytes:
    """What SNS signed: ``Name\\nvalue\\n`` for each signed field present, in order."""
    is_notification = envelope.get("Type") == "Notification"
    names = _NOTIFICATION_FIELDS if is_notification else _CONFIRMATION_FIELDS
    lines = (
        f"{name}\n{envelope[name]}\n"
        for name in names
        if name in envelope and envelope[name] is not None
    )
    return "".join(lines).encode()


async def parse(
    provider: str,
    request: CallbackRequest,
    *,
    topic_arn: str | None,
    certificates: CertificateCache,
    client: httpx.AsyncClient,
    now: datetime,
) -> ParsedCallback:
    if not topic_arn:
        raise CallbackRejectedError(provider, "no SNS topic configured")
    envelope = mapping(json_body(provider, request.body))
    kind = envelope.get("Type")
    if kind not in ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"):
        raise unreadable(provider, "not an Amazon SNS message")
    await _verify(provider, envelope, certificates, client, now)
    if envelope.get("TopicArn") != topic_arn:
        raise CallbackRejectedError(provider, "the message is from another SNS topic")
    if kind == "SubscriptionConfirmation":
        url = check_sns_url(provider, str(envelope.get("SubscribeURL") or ""), "SubscribeURL")
        return ParsedCallback(confirm_subscription_url=url)
    if kind == "UnsubscribeConfirmation":
        return ParsedCallback()
    try:
        message = json_body(provider, str(envelope.get("Message") or "").encode())
    except CallbackRejectedError:
        return ParsedCallback()  # a test message published to the topic by hand
    return ParsedCallback(events=tuple(_events(mapping(message), str(envelope["MessageId"]))))


async def _verify(
    provider: str,
    envelope: dict[str, Any],
    certificates: CertificateCache,
    client: httpx.AsyncClient,
    now: datetime,
) -> None:
    algorithm = _HASHES.get(str(envelope.get("SignatureVersion")))
    if algorithm is None:
        raise CallbackRejectedError(provider, "unknown SignatureVersion")
    for name in ("Signature", "SigningCertURL", "MessageId", "Timestamp", "TopicArn"):
        if not envelope.get(name):
            raise CallbackRejectedError(provider, f"missing {name}")
    url = check_sns_url(provider, str(envelope["SigningCertURL"]), "SigningCertURL")
    if not urllib.parse.urlsplit(url).path.endswith(".pem"):
        raise CallbackRejectedError(provider, "SigningCertURL is not a .pem certificate")
    signature = b64decode(provider, str(envelope["Signature"]), "Signature")
    key = await certificates.key(provider, url, client, now)
    try:
        key.verify(signature, canonical_string(envelope), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise CallbackRejectedError(provider, "wrong signature") from None
    published = from_iso(envelope["Timestamp"])
    if published is None:
        raise CallbackRejectedError(provider, "the Timestamp is not a time")
    if not (
        now - timedelta(seconds=SNS_MAX_AGE_SECONDS)
        <= published
        <= now + timedelta(seconds=CALLBACK_TOLERANCE_SECONDS)
    ):
        raise CallbackRejectedError(provider, "the signed Timestamp is too old or ahead")


def _events(message: dict[str, Any], sns_message_id: str) -> Iterator[DeliveryEvent]:
    name = str(message.get("eventType") or message.get("notificationType") or "")
    kind = _KINDS.get(name)
    mail = mapping(message.get("mail"))
    message_id = text_or_none(mail.get("messageId"))
    if kind is None or message_id is None:
        return
    detail = mapping(message.get(name.lower()))
    occurred_at = from_iso(detail.get("timestamp")) or from_iso(mail.get("timestamp"))
    if occurred_at is None:
        return
    common: dict[str, Any] = {
        "kind": kind,
        "provider_message_id": message_id,
        "occurred_at": occurred_at,
    }
    if kind is DeliveryEventKind.BOUNCED:
        hard = detail.get("bounceType") == "Permanent"
        bounce = BounceKind.HARD if hard else BounceKind.SOFT
        types = "/".join(
            str(part) for part in (detail.get("bounceType"), detail.get("bounceSubType")) if part
        )
        for index, recipient in enumerate(_recipients(detail.get("bouncedRecipients"))):
            diagnostic = text_or_none(recipient.get("diagnosticCode")) or text_or_none(
                recipient.get("status")
            )
            yield DeliveryEvent(
                **common,
                event_id=f"{sns_message_id}:{index}",
                recipient=text_or_none(recipient.get("emailAddress")),
                bounce=bounce,
                suppress=hard,
                reason=": ".join(part for part in (types, diagnostic) if part) or None,
            )
    elif kind is DeliveryEventKind.COMPLAINED:
        feedback = text_or_none(detail.get("complaintFeedbackType"))
        for index, recipient in enumerate(_recipients(detail.get("complainedRecipients"))):
            yield DeliveryEvent(
                **common,
                event_id=f"{sns_message_id}:{index}",
                recipient=text_or_none(recipient.get("emailAddress")),
                suppress=True,
                reason=feedback,
            )
    else:
        recipients = detail.get("recipients") or mail.get("destination") or []
        yield DeliveryEvent(
            **common,
            event_id=sns_message_id,
            recipient=str(recipients[0]) if isinstance(recipients, list) and recipients else None,
            reason=text_or_none(detail.get("smtpResponse")),
            url=text_or_none(detail.get("link")) if kind is DeliveryEventKind.CLICKED else None,
        )


def _recipients(value: Any) -> Iterator[dict[str, Any]]:
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict):
            yield item

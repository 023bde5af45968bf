"""Amazon SES events through Amazon SNS, with the documented sample messages.

SNS envelopes: https://docs.aws.amazon.com/sns/latest/dg/http-notification-json.html and
https://docs.aws.amazon.com/sns/latest/dg/http-subscription-confirmation-json.html; signing:
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html. SES events:
https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-examples.html. The
signing certificate is self-signed in the test and served through an httpx mock transport at
the documented certificate URL.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from providers.callbacks import BounceKind, CallbackRequest, DeliveryEventKind
from providers.ses import SesProvider
from providers.ses_callbacks import canonical_string
from tests.providers.callback_harness import parse, rejected, request

TOPIC_ARN = "arn:aws:sns:us-west-2:123456789012:MyTopic"
CERT_URL = (
    "https://sns.us-west-2.amazonaws.com/"
    "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
)
CREDENTIALS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "SECRET-aws-secret-key"}
SETTINGS = {"from_email": "sender@example.com", "region": "us-west-2", "sns_topic_arn": TOPIC_ARN}
MESSAGE_ID = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
CERTIFICATE = (
    x509.CertificateBuilder()
    .subject_name(_NAME)
    .issuer_name(_NAME)
    .public_key(KEY.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(datetime(2012, 1, 1, tzinfo=UTC))
    .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
    .sign(KEY, hashes.SHA256())
    .public_bytes(serialization.Encoding.PEM)
)

MAIL = {
    "timestamp": "2017-08-05T00:40:02.012Z",
    "source": "Sender Name <sender@example.com>",
    "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
    "sendingAccountId": "123456789012",
    "messageId": MESSAGE_ID,
    "destination": ["recipient@example.com"],
    "headersTruncated": False,
    "commonHeaders": {
        "from": ["Sender Name <sender@example.com>"],
        "to": ["recipient@example.com"],
        "messageId": MESSAGE_ID,
        "subject": "Message sent from Amazon SES",
    },
    "tags": {"ses:configuration-set": ["ConfigSet"]},
}
BOUNCE = {
    "eventType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "recipient@example.com",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": "2017-08-05T00:41:02.669Z",
        "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "reportingMTA": "dsn; mta.example.com",
    },
    "mail": MAIL,
}
COMPLAINT = {
    "eventType": "Complaint",
    "complaint": {
        "complainedRecipients": [{"emailAddress": "recipient@example.com"}],
        "timestamp": "2017-08-05T00:41:02.669Z",
        "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        "complaintFeedbackType": "abuse",
        "arrivalDate": "2017-08-05T00:41:02.669Z",
    },
    "mail": MAIL,
}
DELIVERY = {
    "eventType": "Delivery",
    "mail": MAIL,
    "delivery": {
        "timestamp": "2016-10-19T23:21:04.133Z",
        "processingTimeMillis": 11893,
        "recipients": ["recipient@example.com"],
        "smtpResponse": "250 2.6.0 Message received",
        "reportingMTA": "mta.example.com",
    },
}
OPEN = {
    "eventType": "Open",
    "mail": MAIL,
    "open": {
        "ipAddress": "192.0.2.1",
        "timestamp": "2017-08-09T22:00:19.652Z",
        "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X)",
    },
}
CLICK = {
    "eventType": "Click",
    "click": {
        "ipAddress": "192.0.2.1",
        "link": "http://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html",
        "linkTags": {"samplekey0": ["samplevalue0"]},
        "timestamp": "2017-08-09T23:51:25.570Z",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
    },
    "mail": MAIL,
}
SEND = {"eventType": "Send", "mail": MAIL, "send": {}}

#: The SNS documentation's notification envelope (its Message replaced by the SES event).
NOTIFICATION = {
    "Type": "Notification",
    "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
    "TopicArn": TOPIC_ARN,
    "Subject": "My First Message",
    "Message": "Hello world!",
    "Timestamp": "2012-05-02T00:54:06.655Z",
    "SignatureVersion": "1",
    "SigningCertURL": CERT_URL,
    "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
    "arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0-26c4-47ec-8998-413945fb5a96",
}
SUBSCRIBE_URL = (
    "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn="
    "arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37fb687f5d51e6e241d09c805a5a57b3"
)
CONFIRMATION = {
    "Type": "SubscriptionConfirmation",
    "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
    "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b3",
    "TopicArn": TOPIC_ARN,
    "Message": "You have chosen to subscribe to the topic "
    "arn:aws:sns:us-west-2:123456789012:MyTopic.\n"
    "To confirm the subscription, visit the SubscribeURL included in this message.",
    "SubscribeURL": SUBSCRIBE_URL,
    "Timestamp": "2012-04-26T20:45:04.751Z",
    "SignatureVersion": "1",
    "SigningCertURL": CERT_URL,
}
#: The provider's clock: shortly after the samples' timestamps.
NOW = datetime(2012, 5, 2, 0, 55, tzinfo=UTC)


class CertificateServer:
    """Serves the signing certificate at its documented URL, counting requests."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        if str(request.url) == CERT_URL:
            return httpx.Response(200, content=CERTIFICATE)
        return httpx.Response(404)


def signed(envelope: dict[str, Any], version: str = "1") -> dict[str, Any]:
    envelope = {**envelope, "SignatureVersion": version}
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = KEY.sign(canonical_string(envelope), padding.PKCS1v15(), algorithm)
    return {**envelope, "Signature": base64.b64encode(signature).decode()}


def notification(event: dict[str, Any], version: str = "1") -> dict[str, Any]:
    return signed({**NOTIFICATION, "Message": json.dumps(event)}, version)


def posted(envelope: dict[str, Any]) -> CallbackRequest:
    headers = {
        "Content-Type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": str(envelope["Type"]),
    }
    return request(json.dumps(envelope).encode(), headers)


def provider(now: datetime = NOW) -> SesProvider:
    return SesProvider(clock=lambda: now)


def events(envelope: dict[str, Any], ses: SesProvider | None = None) -> Any:
    server = CertificateServer()
    parsed = parse(ses or provider(), posted(envelope), CREDENTIALS, SETTINGS, server.transport)
    assert server.requests == [CERT_URL]
    return parsed


def refusal(envelope: dict[str, Any], now: datetime = NOW, **settings: Any) -> str:
    server = CertificateServer()
    callback = posted(envelope)
    merged = {**SETTINGS, **settings}
    return rejected(provider(now), callback, CREDENTIALS, merged, server.transport).reason


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_permanent_bounce_is_hard_and_suppresses(version: str) -> None:
    (event,) = events(notification(BOUNCE, version)).events
    assert (event.kind, event.bounce, event.suppress) == (
        DeliveryEventKind.BOUNCED,
        BounceKind.HARD,
        True,
    )
    assert event.provider_message_id == MESSAGE_ID
    assert event.recipient == "recipient@example.com"
    assert event.occurred_at == datetime(2017, 8, 5, 0, 41, 2, 669000, tzinfo=UTC)
    assert event.event_id == "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324:0"
    assert event.reason == "Permanent/General: smtp; 550 5.1.1 user unknown"


def test_a_transient_bounce_is_soft() -> None:
    transient = copy.deepcopy(BOUNCE)
    transient["bounce"]["bounceType"] = "Transient"
    transient["bounce"]["bounceSubType"] = "MailboxFull"
    (event,) = events(notification(transient)).events
    assert (event.bounce, event.suppress) == (BounceKind.SOFT, False)


def test_complaint_delivery_open_and_click() -> None:
    (complaint,) = events(notification(COMPLAINT)).events
    assert (complaint.kind, complaint.suppress, complaint.reason) == (
        DeliveryEventKind.COMPLAINED,
        True,
        "abuse",
    )
    (delivery,) = events(notification(DELIVERY)).events
    assert delivery.kind is DeliveryEventKind.DELIVERED
    assert delivery.reason == "250 2.6.0 Message received"
    assert delivery.event_id == "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
    (opened,) = events(notification(OPEN)).events
    assert (opened.kind, opened.recipient) == (DeliveryEventKind.OPENED, "recipient@example.com")
    (clicked,) = events(notification(CLICK)).events
    assert clicked.url == CLICK["click"]["link"]  # type: ignore[index]


def test_identity_notifications_use_notification_type() -> None:
    legacy = {"notificationType": "Bounce", **{k: v for k, v in BOUNCE.items() if k != "eventType"}}
    (event,) = events(notification(legacy)).events
    assert event.bounce is BounceKind.HARD


def test_unknown_event_types_are_dropped() -> None:
    assert events(notification(SEND)).events == ()
    assert events(notification({**OPEN, "eventType": "DeliveryDelay"})).events == ()


def test_a_subscription_confirmation_asks_for_its_subscribe_url() -> None:
    parsed = events(signed(CONFIRMATION), provider(datetime(2012, 4, 26, 20, 46, tzinfo=UTC)))
    assert parsed.confirm_subscription_url == SUBSCRIBE_URL
    assert parsed.events == ()


def test_the_certificate_is_fetched_once_per_url() -> None:
    ses = provider()
    server = CertificateServer()
    for event in (BOUNCE, DELIVERY, OPEN):
        parse(ses, posted(notification(event)), CREDENTIALS, SETTINGS, server.transport)
    assert server.requests == [CERT_URL]


def test_a_changed_byte_is_rejected() -> None:
    envelope = notification(DELIVERY)
    envelope["Message"] = envelope["Message"].replace("250 2.6.0", "250 2.6.1")
    assert refusal(envelope) == "wrong signature"


def test_a_signature_of_another_key_is_rejected() -> None:
    envelope = notification(DELIVERY)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signature = other.sign(canonical_string(envelope), padding.PKCS1v15(), hashes.SHA1())
    envelope["Signature"] = base64.b64encode(signature).decode()
    assert refusal(envelope) == "wrong signature"


def test_an_old_timestamp_is_rejected() -> None:
    assert "Timestamp" in refusal(notification(DELIVERY), now=NOW + timedelta(hours=2))


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-west-2.amazonaws.com/SimpleNotificationService-x.pem",
        "https://sns.us-west-2.amazonaws.com.evil.example/SimpleNotificationService-x.pem",
        "https://evil.example/sns.us-west-2.amazonaws.com/x.pem",
        "https://s3.us-west-2.amazonaws.com/SimpleNotificationService-x.pem",
        "https://sns.us-west-2.amazonaws.com:8443/SimpleNotificationService-x.pem",
        "https://sns.us-west-2.amazonaws.com/not-a-certificate",
    ],
)
def test_a_signing_cert_url_off_sns_is_refused_without_a_request(url: str) -> None:
    server = CertificateServer()
    callback = posted(signed({**NOTIFICATION, "SigningCertURL": url}))
    rejected(provider(), callback, CREDENTIALS, SETTINGS, server.transport)
    assert server.requests == []


@pytest.mark.parametrize("field", ["Signature", "SigningCertURL", "Timestamp"])
def test_a_missing_field_is_rejected(field: str) -> None:
    envelope = notification(DELIVERY)
    del envelope[field]
    assert refusal(envelope) == f"missing {field}"


def test_an_unknown_signature_version_is_rejected() -> None:
    assert refusal({**notification(DELIVERY), "SignatureVersion": "3"}) == (
        "unknown SignatureVersion"
    )


def test_another_topic_is_rejected() -> None:
    reason = refusal(notification(DELIVERY), sns_topic_arn="arn:aws:sns:us-west-2:1:Other")
    assert reason == "the message is from another SNS topic"


def test_without_a_topic_every_callback_is_rejected() -> None:
    assert refusal(notification(DELIVERY), sns_topic_arn=None) == "no SNS topic configured"


def test_a_certificate_outside_its_validity_is_rejected() -> None:
    assert refusal(notification(DELIVERY), now=datetime(2041, 1, 1, tzinfo=UTC)) == (
        "the signing certificate is not valid now"
    )

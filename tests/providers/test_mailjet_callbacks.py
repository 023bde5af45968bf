"""Mailjet's event webhooks, with the documented sample events.

Samples: https://dev.mailjet.com/email/guides/webhooks/ (the sent, open, click, bounce, blocked
and spam events). Mailjet signs nothing: the event URL carries HTTP basic auth.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from providers.callbacks import BounceKind, CallbackRequest, DeliveryEventKind
from providers.mailjet import MailjetProvider
from tests.providers.callback_harness import parse, rejected, request

PROVIDER = MailjetProvider()
SETTINGS = {"from_email": "pilot@mailjet.com"}
CREDENTIALS = {
    "api_key": "SECRET-mailjet-api-key",
    "secret_key": "SECRET-mailjet-secret-key",
    "webhook_username": "mailjet",
    "webhook_password": "SECRET-webhook-password",
}
#: What the send stored: the answer's ``MessageID``, as text.
STORED_ID = "19421777835146490"


def _event(event: str, **extra: Any) -> dict[str, Any]:
    """The documented event shape."""
    return {
        "event": event,
        "time": 1433333949,
        "MessageID": 19421777835146490,
        "Message_GUID": "1ab23cd4-e567-8901-2345-6789f0gh1i2j",
        "email": "api@mailjet.com",
        "mj_campaign_id": 7257,
        "mj_contact_id": 4,
        "customcampaign": "",
        "CustomID": "helloworld",
        "Payload": "",
        **extra,
    }


SENT = _event(
    "sent",
    mj_message_id="19421777835146490",
    smtp_reply="sent (250 2.0.0 OK 1433333948 fa5si855896wjc.199 - gsmtp)",
)
OPEN = _event("open", ip="127.0.0.1", geo="US", agent="Mozilla/5.0 (Windows NT 5.1; rv:11.0)")
CLICK = _event("click", url="https://mailjet.com", ip="127.0.0.1", geo="FR", agent="Mozilla/5.0")
HARD_BOUNCE = _event(
    "bounce",
    blocked=False,
    hard_bounce=True,
    error_related_to="recipient",
    error="user unknown",
    comment="Host or domain name not found. Name service error for name=lbjsnrftlsiuvbsren.com",
)
SOFT_BOUNCE = {**HARD_BOUNCE, "hard_bounce": False, "error": "mailbox inactive", "comment": ""}
BLOCKED = _event("blocked", error_related_to="recipient", error="user unknown")
BLOCKED_CONTENT = _event("blocked", error_related_to="spam", error="sender blocked")
SPAM = _event("spam", source="JMRPP")
UNSUB = _event("unsub", mj_list_id=1, ip="127.0.0.1", geo="FR", agent="Mozilla/5.0")


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def posted(document: Any, authorization: str | None = None) -> CallbackRequest:
    authorization = authorization or basic("mailjet", "SECRET-webhook-password")
    return request(json.dumps(document).encode(), {"Authorization": authorization})


def only_event(document: dict[str, Any]) -> Any:
    (event,) = parse(PROVIDER, posted(document), CREDENTIALS, SETTINGS).events
    return event


def test_sent_is_delivered() -> None:
    event = only_event(SENT)
    assert event.kind is DeliveryEventKind.DELIVERED
    assert event.provider_message_id == STORED_ID
    assert event.recipient == "api@mailjet.com"
    assert event.occurred_at == datetime(2015, 6, 3, 12, 19, 9, tzinfo=UTC)
    assert event.reason == "sent (250 2.0.0 OK 1433333948 fa5si855896wjc.199 - gsmtp)"


def test_bounces() -> None:
    hard = only_event(HARD_BOUNCE)
    assert (hard.kind, hard.bounce, hard.suppress) == (
        DeliveryEventKind.BOUNCED,
        BounceKind.HARD,
        True,
    )
    assert hard.reason.startswith("recipient user unknown: Host or domain name not found")
    soft = only_event(SOFT_BOUNCE)
    assert (soft.bounce, soft.suppress, soft.reason) == (
        BounceKind.SOFT,
        False,
        "recipient mailbox inactive",
    )


def test_blocked_is_undelivered_and_suppressed_when_it_is_the_recipient() -> None:
    blocked = only_event(BLOCKED)
    assert (blocked.kind, blocked.suppress) == (DeliveryEventKind.UNDELIVERED, True)
    assert only_event(BLOCKED_CONTENT).suppress is False


def test_open_click_and_spam() -> None:
    assert only_event(OPEN).kind is DeliveryEventKind.OPENED
    assert only_event(CLICK).url == "https://mailjet.com"
    spam = only_event(SPAM)
    assert (spam.kind, spam.suppress) == (DeliveryEventKind.COMPLAINED, True)


def test_a_grouped_batch_and_unknown_types() -> None:
    events = parse(PROVIDER, posted([SENT, UNSUB, OPEN]), CREDENTIALS, SETTINGS).events
    assert [e.kind for e in events] == [DeliveryEventKind.DELIVERED, DeliveryEventKind.OPENED]
    assert len({e.event_id for e in events}) == 2


def test_the_guid_is_the_id_when_there_is_no_message_id() -> None:
    event = only_event({**SENT, "MessageID": 0})
    assert event.provider_message_id == "1ab23cd4-e567-8901-2345-6789f0gh1i2j"


@pytest.mark.parametrize(
    "authorization",
    [
        basic("mailjet", "SECRET-webhook-passworD"),
        basic("other", "SECRET-webhook-password"),
        "Bearer SECRET-webhook-password",
    ],
)
def test_wrong_credentials_are_rejected(authorization: str) -> None:
    rejected(PROVIDER, posted(SENT, authorization), CREDENTIALS, SETTINGS)


def test_a_missing_authorization_header_is_rejected() -> None:
    callback = request(json.dumps(SENT).encode())
    reason = rejected(PROVIDER, callback, CREDENTIALS, SETTINGS).reason
    assert reason == "missing authorization header"


def test_without_a_webhook_password_every_callback_is_rejected() -> None:
    credentials = {k: v for k, v in CREDENTIALS.items() if not k.startswith("webhook")}
    reason = rejected(PROVIDER, posted(SENT), credentials, SETTINGS).reason
    assert reason == "no webhook secret configured"

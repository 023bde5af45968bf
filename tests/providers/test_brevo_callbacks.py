"""Brevo's transactional webhooks, with the documented sample events.

Samples: https://developers.brevo.com/docs/transactional-webhooks (delivered, hard_bounce,
soft_bounce, click, spam, invalid_email, blocked...). Brevo signs nothing: the webhook carries
HTTP basic auth or a bearer token (https://developers.brevo.com/reference/createwebhook).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from providers.brevo import BrevoProvider
from providers.callbacks import BounceKind, CallbackRequest, DeliveryEventKind
from tests.providers.callback_harness import parse, rejected, request

PROVIDER = BrevoProvider()
SETTINGS = {"from_email": "sender@example.com"}
BASIC = {
    "api_key": "xkeysib-SECRET-api-key",
    "webhook_username": "brevo",
    "webhook_password": "SECRET-webhook-password",
}
BEARER = {"api_key": "xkeysib-SECRET-api-key", "webhook_token": "SECRET-webhook-token"}
MESSAGE_ID = "<201798300811.5787683@relay.domain.com>"


def _event(event: str, **extra: Any) -> dict[str, Any]:
    """The documented event shape."""
    return {
        "event": event,
        "email": "example@domain.com",
        "id": 26224,
        "date": "2020-08-28 18:08:29",
        "ts": 1598634509,
        "message-id": MESSAGE_ID,
        "ts_event": 1598034509,
        "subject": "Subject Line",
        "tag": '["transactionalTag"]',
        "sending_ip": "185.41.28.109",
        "ts_epoch": 1598634509223,
        "tags": ["myFirstTransactional"],
        **extra,
    }


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def posted(document: dict[str, Any], authorization: str | None = None) -> CallbackRequest:
    authorization = authorization or basic("brevo", "SECRET-webhook-password")
    return request(json.dumps(document).encode(), {"Authorization": authorization})


def only_event(document: dict[str, Any], credentials: dict[str, str] = BASIC) -> Any:
    (event,) = parse(PROVIDER, posted(document), credentials, SETTINGS).events
    return event


def test_delivered() -> None:
    event = only_event(_event("delivered"))
    assert event.kind is DeliveryEventKind.DELIVERED
    assert event.provider_message_id == MESSAGE_ID
    assert event.recipient == "example@domain.com"
    assert event.occurred_at == datetime(2020, 8, 28, 17, 8, 29, 223000, tzinfo=UTC)
    assert event.event_id.startswith("sha256:")


@pytest.mark.parametrize(
    ("name", "kind", "bounce", "suppress"),
    [
        ("hard_bounce", DeliveryEventKind.BOUNCED, BounceKind.HARD, True),
        ("soft_bounce", DeliveryEventKind.BOUNCED, BounceKind.SOFT, False),
        ("spam", DeliveryEventKind.COMPLAINED, None, True),
        ("invalid_email", DeliveryEventKind.UNDELIVERED, None, True),
        ("blocked", DeliveryEventKind.UNDELIVERED, None, True),
        ("opened", DeliveryEventKind.OPENED, None, False),
        ("unique_opened", DeliveryEventKind.OPENED, None, False),
    ],
)
def test_event_types(
    name: str, kind: DeliveryEventKind, bounce: BounceKind | None, suppress: bool
) -> None:
    event = only_event(_event(name, reason="550 5.1.1 user unknown"))
    assert (event.kind, event.bounce, event.suppress) == (kind, bounce, suppress)
    assert event.reason == "550 5.1.1 user unknown"


def test_click() -> None:
    event = only_event(_event("click", link="https://example.com/offer"))
    assert (event.kind, event.url) == (DeliveryEventKind.CLICKED, "https://example.com/offer")


def test_different_events_of_one_message_have_different_ids() -> None:
    ids = {only_event(_event(name)).event_id for name in ("opened", "unique_opened", "delivered")}
    assert len(ids) == 3


def test_unknown_event_types_are_dropped() -> None:
    for name in ("request", "deferred", "unsubscribed", "error"):
        assert parse(PROVIDER, posted(_event(name)), BASIC, SETTINGS).events == ()


def test_a_bearer_token_is_accepted_when_configured() -> None:
    callback = posted(_event("delivered"), "Bearer SECRET-webhook-token")
    (event,) = parse(PROVIDER, callback, BEARER, SETTINGS).events
    assert event.kind is DeliveryEventKind.DELIVERED


@pytest.mark.parametrize(
    ("credentials", "authorization"),
    [
        (BASIC, basic("brevo", "SECRET-webhook-passwore")),
        (BASIC, basic("other", "SECRET-webhook-password")),
        (BASIC, "Bearer SECRET-webhook-password"),
        (BEARER, "Bearer SECRET-webhook-tokem"),
        (BEARER, basic("brevo", "SECRET-webhook-token")),
    ],
)
def test_wrong_credentials_are_rejected(credentials: dict[str, str], authorization: str) -> None:
    rejected(PROVIDER, posted(_event("delivered"), authorization), credentials, SETTINGS)


def test_a_missing_authorization_header_is_rejected() -> None:
    callback = request(json.dumps(_event("delivered")).encode())
    assert rejected(PROVIDER, callback, BASIC, SETTINGS).reason == "missing authorization header"


def test_without_configured_auth_every_callback_is_rejected() -> None:
    credentials = {"api_key": "xkeysib-SECRET-api-key"}
    reason = rejected(PROVIDER, posted(_event("delivered")), credentials, SETTINGS).reason
    assert reason == "no webhook secret configured"

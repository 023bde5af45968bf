"""The fake providers' delivery callbacks: signed like a real provider's, refused otherwise."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from providers.callbacks import (
    BounceKind,
    CallbackRejectedError,
    CallbackRequest,
    DeliveryEventKind,
    ParsedCallback,
)
from providers.fake import FakeCredentials, FakeHttpProvider, FakeHttpSettings, sign_fake_callback

SECRET = "whsec-test-secret"
URL = "https://notify.example.com/v1/webhooks/providers/x"


def body(*events: dict[str, Any]) -> bytes:
    return json.dumps(list(events)).encode()


def event(status: str, **fields: Any) -> dict[str, Any]:
    return {"id": f"e-{status}", "messageId": "msg-1", "status": status,
            "timestamp": 1_700_000_000.5, "recipient": "ada@example.com", **fields}  # fmt: skip


def parse(raw: bytes, headers: dict[str, str], secret: str | None = SECRET) -> ParsedCallback:
    credentials = FakeCredentials.model_validate({"api_key": "k", "webhook_secret": secret})
    request = CallbackRequest(url=URL, headers=headers, body=raw)

    async def run() -> ParsedCallback:
        async with httpx.AsyncClient() as client:
            return await FakeHttpProvider().parse_callback(
                request, credentials, FakeHttpSettings(url="https://fake.example.com"), client
            )

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("status", "kind", "bounce", "suppress"),
    [
        ("delivered", DeliveryEventKind.DELIVERED, None, False),
        ("opened", DeliveryEventKind.OPENED, None, False),
        ("clicked", DeliveryEventKind.CLICKED, None, False),
        ("bounced", DeliveryEventKind.BOUNCED, BounceKind.HARD, True),
        ("soft_bounced", DeliveryEventKind.BOUNCED, BounceKind.SOFT, False),
        ("complained", DeliveryEventKind.COMPLAINED, None, True),
        ("undelivered", DeliveryEventKind.UNDELIVERED, None, False),
        ("invalid_number", DeliveryEventKind.UNDELIVERED, None, True),
    ],
)
def test_each_status_is_normalized(
    status: str, kind: DeliveryEventKind, bounce: BounceKind | None, suppress: bool
) -> None:
    raw = body(event(status, reason="550 no such user", url="https://example.com/a"))
    [parsed] = parse(raw, sign_fake_callback(SECRET, raw)).events
    assert (parsed.kind, parsed.bounce, parsed.suppress) == (kind, bounce, suppress)
    assert (parsed.provider_message_id, parsed.event_id) == ("msg-1", f"e-{status}")
    assert parsed.recipient == "ada@example.com"
    assert parsed.reason == "550 no such user"
    assert parsed.occurred_at.timestamp() == 1_700_000_000.5


def test_statuses_without_a_normalized_name_are_dropped() -> None:
    raw = body(event("processed"), event("queued"), event("delivered"))
    parsed = parse(raw, sign_fake_callback(SECRET, raw))
    assert [e.kind for e in parsed.events] == [DeliveryEventKind.DELIVERED]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("changed byte", "signature does not match"),
        ("other secret", "signature does not match"),
        ("old timestamp", "timestamp outside the tolerance"),
        ("no signature", "signature or timestamp header missing"),
        ("no secret configured", "no webhook secret configured"),
    ],
)
def test_what_is_not_authentic_is_refused(case: str, reason: str) -> None:
    raw = body(event("delivered"))
    headers = sign_fake_callback(SECRET, raw)
    secret: str | None = SECRET
    if case == "changed byte":
        raw = raw.replace(b"msg-1", b"msg-2")
    elif case == "other secret":
        headers = sign_fake_callback("another", raw)
    elif case == "old timestamp":
        headers = sign_fake_callback(SECRET, raw, timestamp=int(time.time()) - 301)
    elif case == "no signature":
        del headers["X-Fake-Signature"]
    else:
        secret = None
    with pytest.raises(CallbackRejectedError) as caught:
        parse(raw, headers, secret)
    assert caught.value.reason == reason
    assert not caught.value.unreadable
    assert SECRET not in str(caught.value)


def test_an_authentic_body_that_cannot_be_read_is_unreadable() -> None:
    raw = b'{"not": "a list"}'
    with pytest.raises(CallbackRejectedError) as caught:
        parse(raw, sign_fake_callback(SECRET, raw))
    assert caught.value.unreadable

"""Web Push against the RFCs: RFC 8030 "Generic Event Delivery Using HTTP Push" (December
2016, §5 request and 201 with Location, §5.2 TTL, §5.3 Urgency, §5.4 Topic, §6.2/§7.2 404 and
410 for an expired subscription), RFC 8291 "Message Encryption for Web Push" (November 2017,
aes128gcm for the subscription's p256dh and auth) and RFC 8292 "VAPID" (November 2017, §2 the
JWT claims, §3 ``Authorization: vapid t=, k=``).

The fake push service decrypts each body with the subscription's private key
(``http_ece.decrypt``) and verifies the VAPID JWT with the integration's public key.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import http_ece
import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient, SendResult
from providers.errors import ExpiredTokenError, IntegrationError, RecipientError, RetryableError
from providers.webpush import WebPushProvider, parse_subscription
from tests.providers.harness import (
    Answer,
    FakeClock,
    ProviderCase,
    ProviderContract,
    Refusal,
    run,
    send,
    send_all,
)
from tests.security.connections import guarded_runtime, listening


def b64url(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


VAPID_KEY = ec.generate_private_key(ec.SECP256R1())
VAPID_PEM = pem(VAPID_KEY)
VAPID_PUBLIC = b64url(public_point(VAPID_KEY))

#: The browser's side of one subscription: its ECDH key and authentication secret.
UA_KEY = ec.generate_private_key(ec.SECP256R1())
UA_AUTH = os.urandom(16)
ENDPOINT = "https://updates.push.example.net/wpush/v2/gAAAAABsubscription-capability"


def subscription(
    endpoint: str = ENDPOINT, key: ec.EllipticCurvePrivateKey = UA_KEY, auth: bytes = UA_AUTH
) -> str:
    return json.dumps(
        {"endpoint": endpoint, "keys": {"p256dh": b64url(public_point(key)), "auth": b64url(auth)}}
    )


CREDENTIALS = {"private_key": VAPID_PEM}
SETTINGS = {"subject": "mailto:ops@example.com", "ttl": 3600}
MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.PUSH,
    to=Recipient(device_tokens=(subscription(),)),
    title="Order shipped",
    body="Your order #1234 is on its way",
    data={"order": 1234},
    options={"urgency": "high", "topic": "order-1234"},
)
LOCATION = "https://updates.push.example.net/m/gAAAAABmessage"


def decrypted(request: httpx.Request, key: ec.EllipticCurvePrivateKey = UA_KEY) -> Any:
    """The plaintext, decrypted as the browser does (the sender key travels in the header)."""
    plain = http_ece.decrypt(
        request.content, private_key=key, auth_secret=UA_AUTH, version="aes128gcm"
    )
    return json.loads(plain)


def vapid_claims(
    request: httpx.Request, audience: str = "https://updates.push.example.net"
) -> dict[str, Any]:
    scheme, _, params = request.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert fields["k"] == VAPID_PUBLIC
    claims: dict[str, Any] = jwt.decode(
        fields["t"],
        VAPID_KEY.public_key(),
        algorithms=["ES256"],
        audience=audience,
    )
    return claims


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == ENDPOINT
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["content-type"] == "application/octet-stream"
    assert request.headers["ttl"] == "3600"
    assert request.headers["urgency"] == "high"
    assert request.headers["topic"] == "order-1234"
    claims = vapid_claims(request)
    assert claims["sub"] == "mailto:ops@example.com"
    assert set(claims) == {"aud", "exp", "sub"}
    assert decrypted(request) == {
        "title": "Order shipped",
        "body": "Your order #1234 is on its way",
        "data": {"order": 1234},
    }


class TestWebPush(ProviderContract):
    case = ProviderCase(
        provider=WebPushProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=ENDPOINT,
        success=Answer(201, text="", headers={"Location": LOCATION}),
        expected_message_id=LOCATION,
        check_request=check_request,
        bad_credentials=Answer(403, text="invalid JWT provided"),
        invalid_recipient=Answer(410, text="push subscription has unsubscribed or expired."),
        required_credential="private_key",
        derived_secrets=(VAPID_PEM.splitlines()[1], b64url(UA_AUTH)),
        refusals=(
            Refusal(Answer(404, text="Not Found"), ExpiredTokenError),
            Refusal(Answer(410, text="Gone"), ExpiredTokenError),
            Refusal(Answer(413, text="Payload Too Large"), RecipientError),
            Refusal(Answer(401, text="Unauthorized"), IntegrationError),
            Refusal(Answer(400, text="Invalid TTL"), IntegrationError),
            Refusal(Answer(502, text="Bad Gateway"), RetryableError),
        ),
    )


def test_exp_is_within_24_hours_and_one_token_is_kept_per_origin() -> None:
    clock = FakeClock()
    provider = WebPushProvider(clock=clock)
    runs = send_all(
        TestWebPush.case,
        [MESSAGE, MESSAGE],
        Answer(201, headers={"Location": LOCATION}),
        provider=provider,
        clock=clock,
        advance=60,
    )
    assert all(not isinstance(outcome, Exception) for outcome in runs.outcomes)
    first, second = (call.request for call in runs.route.calls)
    claims = vapid_claims(first)
    assert 0 < claims["exp"] - clock.now <= 24 * 3600
    assert first.headers["authorization"] == second.headers["authorization"]
    # Each message is encrypted afresh (new salt and sender key).
    assert first.content != second.content
    assert decrypted(first) == decrypted(second)


def test_raw_base64url_private_key_is_accepted() -> None:
    raw = VAPID_KEY.private_numbers().private_value.to_bytes(32, "big")
    outcome = send(
        TestWebPush.case,
        Answer(201, headers={"Location": LOCATION}),
        credentials={"private_key": b64url(raw)},
    )
    assert outcome.sent.provider_message_id == LOCATION
    vapid_claims(outcome.request)


@pytest.mark.parametrize(
    "key",
    [
        "not a key",
        b64url(b"short"),
        pem(ec.generate_private_key(ec.SECP384R1())),
    ],
)
def test_a_key_that_is_not_p256_is_refused_by_name(key: str) -> None:
    with pytest.raises(ValidationError, match="private_key") as caught:
        WebPushProvider.parse_credentials({"private_key": key})
    assert key not in str(caught.value)


def test_subject_must_be_mailto_or_https() -> None:
    with pytest.raises(ValidationError, match="subject"):
        WebPushProvider.parse_settings({"subject": "ops@example.com"})


def test_notification_options_and_defaults() -> None:
    message = MESSAGE.model_copy(
        update={"options": {"notification": {"icon": "https://cdn.example.com/i.png"}}}
    )
    outcome = send(
        TestWebPush.case,
        Answer(201, headers={"Location": LOCATION}),
        message=message,
        settings={"subject": "https://example.com/contact"},
    )
    request = outcome.request
    assert request.headers["ttl"] == "86400"
    assert "urgency" not in request.headers
    assert "topic" not in request.headers
    assert decrypted(request)["icon"] == "https://cdn.example.com/i.png"


def test_every_subscription_gets_its_own_encryption_and_audience() -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = "https://fcm.example.com/fcm/send/other-subscription"
    tokens = (subscription(), subscription(endpoint=other, key=other_key))
    message = MESSAGE.model_copy(update={"to": Recipient(device_tokens=tokens)})
    provider = WebPushProvider()

    async def go() -> SendResult:
        async with httpx.AsyncClient() as client:
            return await provider.send(
                message,
                provider.parse_credentials(CREDENTIALS),
                provider.parse_settings(SETTINGS),
                client,
            )

    with respx.mock() as router:
        route = router.post(url__startswith="https://").mock(
            side_effect=lambda request: httpx.Response(
                201, headers={"Location": f"{request.url}/m1"}
            )
        )
        result = run(go())
    assert result.provider_message_id == f"{ENDPOINT}/m1,{other}/m1"
    by_host = {call.request.url.host: call.request for call in route.calls}
    assert decrypted(by_host["updates.push.example.net"])["title"] == "Order shipped"
    assert decrypted(by_host["fcm.example.com"], other_key)["title"] == "Order shipped"
    assert vapid_claims(by_host["fcm.example.com"], "https://fcm.example.com")["sub"]


@pytest.mark.parametrize(
    "token",
    [
        "fcm-registration-token",
        "[1, 2]",
        json.dumps({"endpoint": ENDPOINT}),
        subscription(endpoint="http://updates.push.example.net/x"),
        json.dumps({"endpoint": ENDPOINT, "keys": {"p256dh": "AAAA", "auth": b64url(UA_AUTH)}}),
    ],
)
def test_a_token_that_is_not_a_subscription_fails_before_sending(token: str) -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(device_tokens=(token,))})
    outcome = send(TestWebPush.case, Answer(201), message=message)
    assert type(outcome.value) is RecipientError
    assert outcome.requests == []
    assert b64url(UA_AUTH) not in str(outcome.value)


@pytest.mark.parametrize(
    "options",
    [{"urgency": "urgent"}, {"topic": "has spaces"}, {"topic": "x" * 33}, {"ttl": -1}],
)
def test_bad_options_fail_before_sending(options: dict[str, Any]) -> None:
    message = MESSAGE.model_copy(update={"options": options})
    outcome = send(TestWebPush.case, Answer(201), message=message)
    assert type(outcome.value) is RecipientError
    assert outcome.requests == []


def test_a_payload_over_what_every_push_service_takes_is_refused() -> None:
    message = MESSAGE.model_copy(update={"body": "x" * 4000})
    outcome = send(TestWebPush.case, Answer(201), message=message)
    assert type(outcome.value) is RecipientError
    assert outcome.requests == []


def test_endpoint_at_a_private_address_is_refused_as_the_recipients() -> None:
    """The dispatcher's guarded client refuses the connection: the subscription fails (not the
    integration, so no fallback is burned) and the address is never connected to."""
    provider = WebPushProvider()
    with listening() as listener, guarded_runtime() as runtime:
        endpoint = f"https://{listener.host}:{listener.port}/wpush/x"
        message = MESSAGE.model_copy(
            update={"to": Recipient(device_tokens=(subscription(endpoint=endpoint),))}
        )
        with pytest.raises(RecipientError, match="push endpoint refused") as caught:
            runtime.run(
                provider.send(
                    message,
                    provider.parse_credentials(CREDENTIALS),
                    provider.parse_settings(SETTINGS),
                    runtime.client(),
                )
            )
        assert listener.connections == 0
    assert "/wpush/x" not in str(caught.value)


def test_subscription_repr_shows_no_keys() -> None:
    parsed = parse_subscription("webpush", subscription())
    assert repr(parsed) == "Subscription(...)"

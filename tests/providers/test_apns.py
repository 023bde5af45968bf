import json
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from providers.apns import ApnsProvider
from providers.base import ChannelType, Message, Recipient, SendResult
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from tests.providers.harness import (
    Answer,
    FakeClock,
    ProviderCase,
    ProviderContract,
    send_all,
)

TEAM_ID = "DEF123GHIJ"
KEY_ID = "ABC123DEFG"
DEVICE_TOKEN = "740f4707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bb78ad"
URL = f"https://api.push.apple.com/3/device/{DEVICE_TOKEN}"
SANDBOX_URL = f"https://api.sandbox.push.apple.com/3/device/{DEVICE_TOKEN}"
APNS_ID = "eabeae54-14a8-11e5-b60b-1697f925ec7b"


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


KEY = ec.generate_private_key(ec.SECP256R1())
PRIVATE_PEM = _pem(KEY)
PUBLIC_KEY = KEY.public_key()
KEY_MATERIAL = PRIVATE_PEM.splitlines()[1]

CREDENTIALS = {"team_id": TEAM_ID, "key_id": KEY_ID, "private_key": PRIVATE_PEM}
SETTINGS = {"topic": "com.example.app"}

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.PUSH,
    to=Recipient(subscriber_id="sub-1", device_tokens=(DEVICE_TOKEN,)),
    title="Order shipped",
    body="Your order is on its way",
    data={"order": 42},
)


def provider_token(request: httpx.Request) -> str:
    scheme, _, token = request.headers["authorization"].partition(" ")
    assert scheme == "bearer"
    return token


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    token = provider_token(request)
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": KEY_ID, "typ": "JWT"}
    claims = jwt.decode(token, PUBLIC_KEY, algorithms=["ES256"])
    assert claims["iss"] == TEAM_ID
    assert abs(claims["iat"] - time.time()) < 60
    assert request.headers["apns-topic"] == "com.example.app"
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-priority"] == "10"
    assert uuid.UUID(request.headers["apns-id"]).version == 5
    assert json.loads(request.content) == {
        "aps": {"alert": {"title": "Order shipped", "body": "Your order is on its way"}},
        "order": 42,
    }


class TestApns(ProviderContract):
    case = ProviderCase(
        provider=ApnsProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        # APNs answers 200 with an empty body; the id is the apns-id header.
        success=Answer(200, text="", headers={"apns-id": APNS_ID}),
        expected_message_id=APNS_ID,
        check_request=check_request,
        bad_credentials=Answer(403, json={"reason": "InvalidProviderToken"}),
        invalid_recipient=Answer(410, json={"reason": "Unregistered", "timestamp": 1700000000000}),
        required_credential="private_key",
        rate_limited=Answer(429, json={"reason": "TooManyRequests"}, headers={"Retry-After": "7"}),
        server_error=Answer(503, json={"reason": "ServiceUnavailable"}),
        derived_secrets=(KEY_MATERIAL,),
    )


def _ok(apns_id: str = APNS_ID) -> httpx.Response:
    return httpx.Response(200, headers={"apns-id": apns_id})


def test_provider_requires_http2() -> None:
    assert ApnsProvider.requires_http2 is True


def test_provider_token_is_signed_with_the_p256_key() -> None:
    route = send_all(TestApns.case, [MESSAGE], [_ok()], provider=ApnsProvider()).route
    token = provider_token(route.calls[0].request)
    jwt.decode(token, PUBLIC_KEY, algorithms=["ES256"])
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other, algorithms=["ES256"])


def test_provider_token_is_reused_for_less_than_an_hour() -> None:
    clock = FakeClock()
    provider = ApnsProvider(clock=clock)
    # Four sends 20 minutes apart: the fourth comes an hour after the first token was made.
    runs = send_all(
        TestApns.case, [MESSAGE] * 4, [_ok()] * 4, provider=provider, clock=clock, advance=20 * 60
    )
    outcomes, route = runs.outcomes, runs.route
    assert all(isinstance(outcome, SendResult) for outcome in outcomes)
    tokens = [provider_token(call.request) for call in route.calls]
    assert tokens[0] == tokens[1] == tokens[2]
    assert tokens[3] != tokens[0]
    first = jwt.decode(tokens[0], PUBLIC_KEY, algorithms=["ES256"], options={"verify_iat": False})
    fourth = jwt.decode(tokens[3], PUBLIC_KEY, algorithms=["ES256"], options={"verify_iat": False})
    assert fourth["iat"] - first["iat"] == 60 * 60


@pytest.mark.parametrize("reason", ["ExpiredProviderToken", "InvalidProviderToken"])
def test_refused_provider_token_is_made_again(reason: str) -> None:
    refused = httpx.Response(403, json={"reason": reason})
    clock = FakeClock()
    runs = send_all(
        TestApns.case,
        [MESSAGE, MESSAGE],
        [refused, _ok()],
        provider=ApnsProvider(clock=clock),
        clock=clock,
        advance=1,
    )
    outcomes, route = runs.outcomes, runs.route
    assert type(outcomes[0]) is IntegrationError
    assert outcomes[0].provider_code == reason
    assert isinstance(outcomes[1], SendResult)
    first, second = (provider_token(call.request) for call in route.calls)
    assert first != second


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (400, "BadDeviceToken", RecipientError),
        (400, "DeviceTokenNotForTopic", RecipientError),
        (410, "Unregistered", RecipientError),
        (410, "ExpiredToken", RecipientError),
        (403, "InvalidProviderToken", IntegrationError),
        (403, "ExpiredProviderToken", IntegrationError),
        (403, "MissingProviderToken", IntegrationError),
        (400, "TopicDisallowed", IntegrationError),
        (400, "BadTopic", IntegrationError),
        (403, "Forbidden", IntegrationError),
        (400, "BadCollapseId", IntegrationError),
        (429, "TooManyRequests", RetryableError),
        (429, "TooManyProviderTokenUpdates", RetryableError),
        (500, "InternalServerError", RetryableError),
        (503, "ServiceUnavailable", RetryableError),
        (503, "Shutdown", RetryableError),
        (400, "IdleTimeout", RetryableError),
    ],
)
def test_reasons(status: int, reason: str, expected: type[ProviderError]) -> None:
    outcomes = send_all(
        TestApns.case,
        [MESSAGE],
        [httpx.Response(status, json={"reason": reason})],
        provider=ApnsProvider(),
    ).outcomes
    error = outcomes[0]
    assert type(error) is expected
    assert isinstance(error, ProviderError)
    assert error.provider_code == reason
    assert error.status_code == status
    assert reason in str(error)


def test_sandbox_environment_uses_the_sandbox_host() -> None:
    runs = send_all(
        TestApns.case,
        [MESSAGE],
        [_ok()],
        provider=ApnsProvider(),
        settings={**SETTINGS, "environment": "sandbox"},
        url=SANDBOX_URL,
    )
    outcomes, route = runs.outcomes, runs.route
    assert isinstance(outcomes[0], SendResult)
    assert route.calls[0].request.url.host == "api.sandbox.push.apple.com"


def test_message_without_text_is_a_background_push() -> None:
    message = MESSAGE.model_copy(update={"title": None, "body": ""})
    route = send_all(TestApns.case, [message], [_ok()], provider=ApnsProvider()).route
    request = route.calls[0].request
    assert request.headers["apns-push-type"] == "background"
    assert request.headers["apns-priority"] == "5"
    assert json.loads(request.content) == {"aps": {"content-available": 1}, "order": 42}


def test_options_set_aps_fields_and_apns_headers() -> None:
    message = MESSAGE.model_copy(
        update={
            "options": {
                "aps": {"sound": "default", "badge": 3},
                "apns-collapse-id": "order-42",
                "apns-expiration": 0,
            }
        }
    )
    route = send_all(TestApns.case, [message], [_ok()], provider=ApnsProvider()).route
    request = route.calls[0].request
    assert request.headers["apns-collapse-id"] == "order-42"
    assert request.headers["apns-expiration"] == "0"
    aps = json.loads(request.content)["aps"]
    assert aps["sound"] == "default"
    assert aps["badge"] == 3
    assert aps["alert"]["title"] == "Order shipped"


def test_apns_id_is_stable_per_delivery_and_device() -> None:
    other_delivery = MESSAGE.model_copy(update={"delivery_id": "d-2"})
    route = send_all(
        TestApns.case, [MESSAGE, MESSAGE, other_delivery], [_ok()] * 3, provider=ApnsProvider()
    ).route
    ids = [call.request.headers["apns-id"] for call in route.calls]
    assert ids[0] == ids[1]
    assert ids[2] != ids[0]


def test_missing_apns_id_header_falls_back_to_the_id_sent() -> None:
    runs = send_all(TestApns.case, [MESSAGE], [httpx.Response(200)], provider=ApnsProvider())
    outcomes, route = runs.outcomes, runs.route
    result = outcomes[0]
    assert isinstance(result, SendResult)
    assert result.provider_message_id == route.calls[0].request.headers["apns-id"]


def test_several_devices_fold_into_one_result() -> None:
    other = "f" * 64
    message = MESSAGE.model_copy(update={"to": Recipient(device_tokens=(DEVICE_TOKEN, other))})
    other_url = f"https://api.push.apple.com/3/device/{other}"
    runs = send_all(
        TestApns.case,
        [message],
        httpx.Response(410, json={"reason": "Unregistered"}),
        provider=ApnsProvider(),
        routes={other_url: _ok("id-2")},
    )
    [result] = runs.outcomes
    assert runs.route.call_count == runs.routes[other_url].call_count == 1
    assert isinstance(result, SendResult)
    assert result.provider_message_id == "id-2"


@pytest.mark.parametrize(
    "private_key",
    [
        _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        _pem(ec.generate_private_key(ec.SECP384R1())),
        "-----BEGIN PRIVATE KEY-----\nSECRET-not-a-key\n-----END PRIVATE KEY-----",
    ],
)
def test_private_key_must_be_a_p256_key_and_is_not_echoed(private_key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ApnsProvider.parse_credentials({**CREDENTIALS, "private_key": private_key})
    text = str(caught.value)
    assert "private_key" in text
    assert private_key.splitlines()[1] not in text


def test_topic_is_required() -> None:
    with pytest.raises(ValidationError) as caught:
        ApnsProvider.parse_settings({})
    assert "topic" in str(caught.value)

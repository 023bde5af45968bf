import json
import time
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient, SendResult
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.fcm import FCM_SCOPE, FcmProvider
from tests.providers.harness import (
    Answer,
    FakeClock,
    ProviderCase,
    ProviderContract,
    check,
    send_all,
)

TOKEN_URI = "https://oauth2.googleapis.com/token"
URL = "https://fcm.googleapis.com/v1/projects/demo-project/messages:send"
ACCESS_TOKEN = "ya29.SECRET-access-token"
CLIENT_EMAIL = "sender@demo-project.iam.gserviceaccount.com"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_PEM = KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
).decode()
PUBLIC_PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
#: A line of the key's base64 body: it must never show in an error or log.
KEY_MATERIAL = PRIVATE_PEM.splitlines()[3]

#: A downloaded service-account key file, pasted whole.
CREDENTIALS = {
    "type": "service_account",
    "project_id": "demo-project",
    "private_key_id": "4f1c0a3b2e",
    "private_key": PRIVATE_PEM,
    "client_email": CLIENT_EMAIL,
    "client_id": "109876543210",
    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
    "token_uri": TOKEN_URI,
    "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
    "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/sender",
    "universe_domain": "googleapis.com",
}

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.PUSH,
    to=Recipient(subscriber_id="sub-1", device_tokens=("device-token-1",)),
    title="Order shipped",
    body="Your order is on its way",
    data={"order": 42, "kind": "shipped"},
    options={"android": {"priority": "high"}},
)
MESSAGE_NAME = "projects/demo-project/messages/0:1500415314455276%31bd1c9631bd1c96"


def token_answer(value: str = ACCESS_TOKEN, expires_in: int = 3599) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": value, "expires_in": expires_in, "token_type": "Bearer"}
    )


def token_route(router: respx.MockRouter) -> None:
    router.post(TOKEN_URI).mock(return_value=token_answer())


def fcm_error(status: int, code: str, message: str, fcm_code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if fcm_code:
        error["details"] = [{"@type": FCM_ERROR, "errorCode": fcm_code}]
    return {"error": error}


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert json.loads(request.content) == {
        "message": {
            "token": "device-token-1",
            "notification": {"title": "Order shipped", "body": "Your order is on its way"},
            # FCM data values must be strings.
            "data": {"order": "42", "kind": "shipped"},
            "android": {"priority": "high"},
        }
    }


class TestFcm(ProviderContract):
    case = ProviderCase(
        provider=FcmProvider,
        credentials=CREDENTIALS,
        message=MESSAGE,
        method="POST",
        url=URL,
        extra_routes=token_route,
        success=Answer(200, json={"name": MESSAGE_NAME}),
        expected_message_id=MESSAGE_NAME,
        check_request=check_request,
        bad_credentials=Answer(
            401,
            json=fcm_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            ),
        ),
        invalid_recipient=Answer(
            404, json=fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
        ),
        required_credential="private_key",
        rate_limited=Answer(
            429,
            json=fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED"),
            headers={"Retry-After": "7"},
        ),
        server_error=Answer(
            503,
            json=fcm_error(
                503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE"
            ),
        ),
        derived_secrets=(ACCESS_TOKEN, KEY_MATERIAL),
    )


def _ok(name: str = MESSAGE_NAME) -> httpx.Response:
    return httpx.Response(200, json={"name": name})


def test_assertion_is_an_rs256_jwt_signed_by_the_service_account_key() -> None:
    before = int(time.time())
    tokens = send_all(
        TestFcm.case,
        [MESSAGE],
        [_ok()],
        provider=FcmProvider(),
        routes={TOKEN_URI: [token_answer()]},
    ).routes[TOKEN_URI]
    request = tokens.calls[0].request
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request.content.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    [assertion] = form["assertion"]

    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "RS256"
    assert header["kid"] == "4f1c0a3b2e"
    claims = jwt.decode(assertion, PUBLIC_PEM, algorithms=["RS256"], audience=TOKEN_URI)
    assert claims["iss"] == CLIENT_EMAIL
    assert claims["scope"] == FCM_SCOPE == "https://www.googleapis.com/auth/firebase.messaging"
    assert claims["aud"] == TOKEN_URI
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + 3600

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(assertion, other_key, algorithms=["RS256"], audience=TOKEN_URI)


def test_access_token_is_cached_across_sends_and_refreshed_after_expiry() -> None:
    clock = FakeClock()
    provider = FcmProvider(clock=clock)
    first = token_answer("ya29.first", expires_in=3600)
    second = token_answer("ya29.second", expires_in=3600)

    # Two sends ten minutes apart share the first token; 50 minutes later (five minutes before
    # it expires) the third send exchanges a new one.
    runs = send_all(
        TestFcm.case,
        [MESSAGE, MESSAGE],
        [_ok(), _ok()],
        provider=provider,
        routes={TOKEN_URI: [first, second]},
        clock=clock,
        advance=600,
    )
    outcomes, tokens, sends = runs.outcomes, runs.routes[TOKEN_URI], runs.route
    assert all(isinstance(outcome, SendResult) for outcome in outcomes)
    assert tokens.call_count == 1
    assert [call.request.headers["authorization"] for call in sends.calls] == [
        "Bearer ya29.first",
        "Bearer ya29.first",
    ]

    clock.now += 3600 - 300 - 1200 + 1
    runs = send_all(
        TestFcm.case,
        [MESSAGE],
        [_ok()],
        provider=provider,
        routes={TOKEN_URI: [second]},
        clock=clock,
    )
    outcomes, tokens, sends = runs.outcomes, runs.routes[TOKEN_URI], runs.route
    assert isinstance(outcomes[0], SendResult)
    assert tokens.call_count == 1
    assert sends.calls[0].request.headers["authorization"] == "Bearer ya29.second"


def test_concurrent_sends_to_several_tokens_exchange_one_access_token() -> None:
    message = MESSAGE.model_copy(
        update={"to": Recipient(device_tokens=("device-a", "device-b", "device-c"))}
    )
    runs = send_all(
        TestFcm.case,
        [message],
        [_ok("projects/p/messages/a"), _ok("projects/p/messages/b"), _ok("projects/p/messages/c")],
        provider=FcmProvider(),
        routes={TOKEN_URI: [token_answer()]},
    )
    outcomes, tokens, sends = runs.outcomes, runs.routes[TOKEN_URI], runs.route
    assert tokens.call_count == 1
    assert sends.call_count == 3
    result = outcomes[0]
    assert isinstance(result, SendResult)
    assert result.provider_message_id is not None
    assert sorted(result.provider_message_id.split(",")) == [
        "projects/p/messages/a",
        "projects/p/messages/b",
        "projects/p/messages/c",
    ]


def test_rejected_access_token_is_exchanged_again_on_the_next_send() -> None:
    unauthenticated = httpx.Response(
        401, json=fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication.")
    )
    runs = send_all(
        TestFcm.case,
        [MESSAGE, MESSAGE],
        [unauthenticated, _ok()],
        provider=FcmProvider(),
        routes={TOKEN_URI: [token_answer("ya29.revoked"), token_answer("ya29.fresh")]},
    )
    outcomes, tokens, sends = runs.outcomes, runs.routes[TOKEN_URI], runs.route
    assert type(outcomes[0]) is IntegrationError
    assert isinstance(outcomes[1], SendResult)
    assert tokens.call_count == 2
    assert sends.calls[1].request.headers["authorization"] == "Bearer ya29.fresh"


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "retry_after"),
    [
        (
            400,
            fcm_error(
                400,
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
                "INVALID_ARGUMENT",
            ),
            {},
            RecipientError,
            None,
        ),
        (
            400,
            {
                "error": {
                    "code": 400,
                    "message": "Invalid value at 'message.token' (TYPE_STRING)",
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [{"field": "message.token"}],
                        }
                    ],
                }
            },
            {},
            RecipientError,
            None,
        ),
        (
            # A payload error is not the recipient's fault.
            400,
            {
                "error": {
                    "code": 400,
                    "message": "Invalid value at 'message.data[0].value' (TYPE_STRING), 12",
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [{"field": "message.data[0].value"}],
                        }
                    ],
                }
            },
            {},
            IntegrationError,
            None,
        ),
        (
            403,
            fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"),
            {},
            IntegrationError,
            None,
        ),
        (
            403,
            fcm_error(403, "PERMISSION_DENIED", "The caller does not have permission"),
            {},
            IntegrationError,
            None,
        ),
        (
            401,
            fcm_error(401, "UNAUTHENTICATED", "Auth error from APNS", "THIRD_PARTY_AUTH_ERROR"),
            {},
            IntegrationError,
            None,
        ),
        (500, fcm_error(500, "INTERNAL", "Internal error.", "INTERNAL"), {}, RetryableError, None),
        (
            503,
            fcm_error(503, "UNAVAILABLE", "The service is unavailable.", "UNAVAILABLE"),
            {"Retry-After": "30"},
            RetryableError,
            30.0,
        ),
        (
            429,
            fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED"),
            {"Retry-After": "60"},
            RetryableError,
            60.0,
        ),
    ],
)
def test_error_codes(
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    expected: type[ProviderError],
    retry_after: float | None,
) -> None:
    outcomes = send_all(
        TestFcm.case,
        [MESSAGE],
        [httpx.Response(status, json=body, headers=headers)],
        provider=FcmProvider(),
        routes={TOKEN_URI: [token_answer()]},
    ).outcomes
    error = outcomes[0]
    assert type(error) is expected
    assert isinstance(error, ProviderError)
    assert error.status_code == status
    if isinstance(error, RetryableError):
        assert error.retry_after == retry_after


def test_one_unregistered_token_among_several_still_sends() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(device_tokens=("stale", "fresh"))})

    def answer(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["message"]["token"] == "stale":
            return httpx.Response(
                404, json=fcm_error(404, "NOT_FOUND", "Not found.", "UNREGISTERED")
            )
        return _ok("projects/demo-project/messages/fresh")

    runs = send_all(
        TestFcm.case,
        [message],
        answer,
        provider=FcmProvider(),
        routes={TOKEN_URI: [token_answer()]},
    )
    outcomes, sends = runs.outcomes, runs.route
    assert sends.call_count == 2
    assert outcomes[0] == SendResult(
        provider_message_id="projects/demo-project/messages/fresh", status_code=200
    )


def test_token_exchange_refused_is_an_integration_error_and_nothing_is_sent() -> None:
    refused = httpx.Response(
        400, json={"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    )
    runs = send_all(
        TestFcm.case, [MESSAGE], [_ok()], provider=FcmProvider(), routes={TOKEN_URI: [refused]}
    )
    outcomes, sends = runs.outcomes, runs.route
    error = outcomes[0]
    assert type(error) is IntegrationError
    assert error.provider_code == "invalid_grant"
    assert "Invalid JWT Signature." in str(error)
    assert sends.call_count == 0


def test_a_lost_token_answer_is_retryable_not_ambiguous() -> None:
    # No message was sent yet, so nothing can be duplicated by trying again.
    runs = send_all(
        TestFcm.case,
        [MESSAGE],
        [_ok()],
        provider=FcmProvider(),
        routes={TOKEN_URI: httpx.ReadTimeout("timed out")},
    )
    error = runs.outcomes[0]
    assert type(error) is RetryableError
    assert error.reason.startswith("token exchange: read timeout (ReadTimeout)")
    assert runs.route.call_count == 0


def test_token_endpoint_outage_is_retryable() -> None:
    runs = send_all(
        TestFcm.case,
        [MESSAGE],
        [_ok()],
        provider=FcmProvider(),
        routes={TOKEN_URI: [httpx.Response(503, text="unavailable", headers={"Retry-After": "5"})]},
    )
    outcomes, sends = runs.outcomes, runs.route
    error = outcomes[0]
    assert isinstance(error, RetryableError)
    assert error.retry_after == 5.0
    assert sends.call_count == 0


def test_recipient_without_device_token_fails_before_any_request() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="sub-1")})
    runs = send_all(
        TestFcm.case,
        [message],
        [_ok()],
        provider=FcmProvider(),
        routes={TOKEN_URI: [token_answer()]},
    )
    outcomes, tokens, sends = runs.outcomes, runs.routes[TOKEN_URI], runs.route
    assert type(outcomes[0]) is RecipientError
    assert tokens.call_count == 0
    assert sends.call_count == 0


def test_key_with_escaped_newlines_is_accepted() -> None:
    escaped = {**CREDENTIALS, "private_key": PRIVATE_PEM.replace("\n", "\\n")}
    runs = send_all(
        TestFcm.case,
        [MESSAGE],
        [_ok()],
        provider=FcmProvider(),
        routes={TOKEN_URI: [token_answer()]},
        credentials=escaped,
    )
    outcomes, tokens = runs.outcomes, runs.routes[TOKEN_URI]
    assert isinstance(outcomes[0], SendResult)
    assertion = parse_qs(tokens.calls[0].request.content.decode())["assertion"][0]
    jwt.decode(assertion, PUBLIC_PEM, algorithms=["RS256"], audience=TOKEN_URI)


@pytest.mark.parametrize(
    "private_key",
    [
        "-----BEGIN PRIVATE KEY-----\nSECRET-not-a-key\n-----END PRIVATE KEY-----\n",
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode(),
    ],
)
def test_private_key_must_be_an_rsa_key_and_is_not_echoed(private_key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FcmProvider.parse_credentials({**CREDENTIALS, "private_key": private_key})
    text = str(caught.value)
    assert "private_key" in text
    assert private_key.splitlines()[1] not in text


def test_token_uri_must_be_https() -> None:
    with pytest.raises(ValidationError) as caught:
        FcmProvider.parse_credentials({**CREDENTIALS, "token_uri": "http://oauth2.example/token"})
    assert "token_uri" in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (httpx.Response(200, json={"name": "projects/demo-project/messages/fake"}), True),
        (
            httpx.Response(
                403,
                json=fcm_error(
                    403, "PERMISSION_DENIED", "Permission denied.", "SENDER_ID_MISMATCH"
                ),
            ),
            False,
        ),
    ],
)
def test_check_validates_a_send_without_delivering(answer: httpx.Response, ok: bool) -> None:
    # The case's token route answers the exchange.
    result, request = check(TestFcm.case, answer, url=URL, method="POST")
    assert result.ok is ok
    body = json.loads(request.content)
    assert body["validate_only"] is True
    assert "token" not in body["message"]
    assert ACCESS_TOKEN not in result.detail

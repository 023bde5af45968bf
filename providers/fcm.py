"""Firebase Cloud Messaging HTTP v1: https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send

Auth is a service account (https://developers.google.com/identity/protocols/oauth2/service-account):
an RS256 JWT assertion (``iss`` the client email, ``scope`` firebase.messaging, ``aud`` the token
URI, ``iat``/``exp`` one hour apart) signed with its private key is exchanged at
``https://oauth2.googleapis.com/token`` (JWT bearer grant) for an access token, cached per service
account until shortly before it expires. Then one
``POST https://fcm.googleapis.com/v1/projects/{project_id}/messages:send`` per device token, with
``{"message": {"token", "notification", "data", ...}}``; a 200 answers ``{"name":
"projects/{id}/messages/{message id}"}``.

Errors (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode) come as
``{"error": {"code", "message", "status", "details": [{"@type": "...FcmError", "errorCode"}]}}``:
UNREGISTERED, and INVALID_ARGUMENT about the registration token, are recipient errors;
UNAUTHENTICATED, THIRD_PARTY_AUTH_ERROR, SENDER_ID_MISMATCH and PERMISSION_DENIED are integration
errors; UNAVAILABLE, INTERNAL and QUOTA_EXCEEDED are retried after the ``Retry-After`` they carry.

Not an :class:`~providers.http_provider.HttpProvider`: a send may exchange a token first, then
makes one request per device token.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr, field_validator, model_validator

from providers.base import (
    ChannelType,
    CheckResult,
    Credentials,
    Message,
    NoSettings,
    Provider,
    SendResult,
)
from providers.errors import (
    MAX_DETAIL,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.http import classify_status, json_body, retry_after_header, send_request
from providers.jwt_auth import (
    CachedToken,
    Clock,
    TokenCache,
    fingerprint,
    load_private_key,
    request_token,
    sign_jwt,
)
from providers.push_fanout import send_to_each_token

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - an endpoint, not a secret
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SEND_URL = "https://fcm.googleapis.com/v1/projects/{project_id}/messages:send"

#: Lifetime we ask for in the assertion (Google's maximum is one hour).
ASSERTION_LIFETIME = 3600
#: Refresh a cached access token this many seconds before it expires.
TOKEN_REFRESH_MARGIN = 300.0

RECIPIENT_CODES = frozenset({"UNREGISTERED"})
INTEGRATION_CODES = frozenset(
    {"UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "SENDER_ID_MISMATCH", "PERMISSION_DENIED"}
)
RETRYABLE_CODES = frozenset({"UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"})

#: Fields of a downloaded service-account JSON file that sending does not need.
_IGNORED_SERVICE_ACCOUNT_FIELDS = frozenset(
    {
        "type",
        "client_id",
        "auth_uri",
        "auth_provider_x509_cert_url",
        "client_x509_cert_url",
        "universe_domain",
    }
)

#: ``Message.options`` keys passed through into the FCM ``message`` object as they are.
PLATFORM_OPTION_KEYS = ("android", "apns", "webpush", "fcm_options")


class FcmCredentials(Credentials):
    """The fields of a Google service-account key file (the whole file may be pasted)."""

    project_id: str
    client_email: str
    private_key: SecretStr
    private_key_id: str | None = None
    token_uri: str = GOOGLE_TOKEN_URI

    @model_validator(mode="before")
    @classmethod
    def _drop_unused_key_file_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in _IGNORED_SERVICE_ACCOUNT_FIELDS}
        return data

    @field_validator("private_key")
    @classmethod
    def _is_rsa_key(cls, value: SecretStr) -> SecretStr:
        if not isinstance(load_private_key(value), rsa.RSAPrivateKey):
            raise ValueError("private_key must be the PEM RSA private key of the key file")
        return value

    @field_validator("token_uri")
    @classmethod
    def _is_https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("token_uri must be an https URL")
        return value


class FcmProvider(Provider[FcmCredentials, NoSettings]):
    """Sends through FCM HTTP v1, one request per device token, concurrently."""

    name = "fcm"
    display_name = "Firebase Cloud Messaging"
    channel = ChannelType.PUSH
    credentials_model = FcmCredentials
    settings_model = NoSettings
    returns_message_id = True

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._tokens = TokenCache(clock)

    async def send(
        self,
        message: Message,
        credentials: FcmCredentials,
        settings: NoSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        async def send_one(token: str) -> SendResult:
            return await self._send_to_token(message, token, credentials, client)

        return await send_to_each_token(self.name, message.to.device_tokens, send_one)

    async def check(
        self,
        credentials: FcmCredentials,
        settings: NoSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        """Obtain an access token and validate (``validate_only``, nothing is delivered) a send."""
        try:
            response, _ = await self._post(
                credentials,
                client,
                {
                    "validate_only": True,
                    "message": {
                        "topic": "credentials-check",
                        "notification": {"title": "check", "body": "check"},
                    },
                },
            )
        except ProviderError as exc:
            return CheckResult(ok=False, detail=str(exc))
        if response.is_success:
            return CheckResult(ok=True, detail=f"HTTP {response.status_code}: send validated")
        return CheckResult(ok=False, detail=str(self._classify(response)))

    # -- sending -------------------------------------------------------------------------------

    async def _send_to_token(
        self,
        message: Message,
        token: str,
        credentials: FcmCredentials,
        client: httpx.AsyncClient,
    ) -> SendResult:
        response, access_token = await self._post(
            credentials, client, {"message": build_message(message, token)}
        )
        if response.is_success:
            name = json_body(response).get("name")
            return SendResult(
                provider_message_id=str(name) if name else None,
                status_code=response.status_code,
            )
        if response.status_code == 401:
            # The access token was revoked or expired early: exchange a new one next time.
            self._tokens.drop(_credentials_key(credentials), access_token)
        raise self._classify(response)

    async def _post(
        self, credentials: FcmCredentials, client: httpx.AsyncClient, body: dict[str, Any]
    ) -> tuple[httpx.Response, str]:
        access_token = await self._tokens.get(
            _credentials_key(credentials), lambda: self._exchange(credentials, client)
        )
        response = await send_request(
            self.name,
            client,
            "POST",
            SEND_URL.format(project_id=credentials.project_id),
            headers={"Authorization": f"Bearer {access_token}"},
            json=body,
        )
        return response, access_token

    def _classify(self, response: httpx.Response) -> ProviderError:
        error = json_body(response).get("error")
        error = error if isinstance(error, dict) else {}
        status = str(error.get("status") or "")
        code = _fcm_error_code(error) or status or None
        text = str(error.get("message") or "")[:MAX_DETAIL]
        reason = f"HTTP {response.status_code} {code or ''}: {text}".strip().rstrip(":")
        status_code = response.status_code
        if code in RECIPIENT_CODES:
            return RecipientError(
                self.name,
                f"device token is no longer registered ({reason})",
                status_code=status_code,
                provider_code=code,
            )
        if code == "INVALID_ARGUMENT" and _about_token(error):
            return RecipientError(
                self.name,
                f"invalid device token ({reason})",
                status_code=status_code,
                provider_code=code,
            )
        if code in INTEGRATION_CODES or status in INTEGRATION_CODES:
            return IntegrationError(self.name, reason, status_code=status_code, provider_code=code)
        if code in RETRYABLE_CODES:
            return RetryableError(
                self.name,
                reason,
                status_code=status_code,
                provider_code=code,
                retry_after=retry_after_header(response),
            )
        return classify_status(self.name, response, message=reason, provider_code=code)

    # -- access token ----------------------------------------------------------------------------

    async def _exchange(
        self, credentials: FcmCredentials, client: httpx.AsyncClient
    ) -> CachedToken:
        now = int(self._clock())
        return await request_token(
            self.name,
            client,
            credentials.token_uri,
            {"grant_type": JWT_BEARER_GRANT, "assertion": self._assertion(credentials, now)},
            now=now,
            refresh_margin=TOKEN_REFRESH_MARGIN,
        )

    def _assertion(self, credentials: FcmCredentials, now: int) -> str:
        claims = {
            "iss": credentials.client_email,
            "scope": FCM_SCOPE,
            "aud": credentials.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        headers = {"kid": credentials.private_key_id} if credentials.private_key_id else None
        return sign_jwt(
            self.name, claims, credentials.private_key, algorithm="RS256", headers=headers
        )


def build_message(message: Message, token: str) -> dict[str, Any]:
    """The FCM v1 ``message`` object for one device token."""
    notification: dict[str, Any] = {}
    if message.title:
        notification["title"] = message.title
    if message.body:
        notification["body"] = message.body
    extra_notification = message.options.get("notification")
    if isinstance(extra_notification, dict):
        notification.update(extra_notification)
    body: dict[str, Any] = {"token": token}
    if notification:
        body["notification"] = notification
    if message.data:
        body["data"] = {str(key): _string_value(value) for key, value in message.data.items()}
    for key in PLATFORM_OPTION_KEYS:
        if key in message.options:
            body[key] = message.options[key]
    return body


def _string_value(value: Any) -> str:
    """FCM ``data`` values must be strings: non-strings are sent as JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _credentials_key(credentials: FcmCredentials) -> str:
    return fingerprint(
        credentials.client_email,
        credentials.token_uri,
        credentials.private_key.get_secret_value(),
    )


def _fcm_error_code(error: dict[str, Any]) -> str | None:
    """The ``errorCode`` of the ``google.firebase.fcm.v1.FcmError`` detail, if any."""
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("FcmError"):
            code = detail.get("errorCode")
            if isinstance(code, str) and code:
                return code
    return None


def _about_token(error: dict[str, Any]) -> bool:
    """Whether an INVALID_ARGUMENT error is about the registration token, not the payload."""
    for detail in error.get("details") or ():
        if not isinstance(detail, dict):
            continue
        for violation in detail.get("fieldViolations") or ():
            if isinstance(violation, dict) and violation.get("field") == "message.token":
                return True
    return "registration token" in str(error.get("message", "")).lower()

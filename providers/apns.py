"""Apple Push Notification service, token-based: https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns

Auth (https://developer.apple.com/documentation/usernotifications/establishing-a-token-based-connection-to-apns)
is a provider token: an ES256 JWT with the key id as ``kid`` header and ``iss`` (team id) and
``iat`` claims, signed with the team's ``.p8`` signing key. Apple wants it renewed at least once
an hour and at most once every 20 minutes, so one token is kept for 50 minutes.

One ``POST https://api.push.apple.com/3/device/{device token}`` (``api.sandbox.push.apple.com``
for development builds) per device token, over HTTP/2, with ``authorization: bearer <token>``,
``apns-topic`` (the bundle id), ``apns-push-type``, ``apns-priority`` and ``apns-id`` headers and
the JSON payload ``{"aps": {"alert": {"title", "body"}}, <custom keys>}``. A 200 has an empty
body and echoes ``apns-id``, which is the message id.

Errors (https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns)
are ``{"reason": "..."}``: BadDeviceToken, DeviceTokenNotForTopic, Unregistered and ExpiredToken
(410) name the recipient; the provider token, topic and certificate reasons name the integration;
TooManyRequests, ServiceUnavailable, InternalServerError and Shutdown are retried.

Not an :class:`~providers.http_provider.HttpProvider`: a send is one request per device token, and
a refused provider token is dropped from its cache.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr, field_validator

from providers.base import (
    ChannelType,
    Credentials,
    Message,
    Provider,
    SendResult,
    Settings,
)
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.http import classify_status, json_body, retry_after_header, send_request
from providers.jwt_auth import (
    CachedToken,
    Clock,
    TokenCache,
    fingerprint,
    load_private_key,
    sign_jwt,
)
from providers.push_fanout import send_to_each_token

HOSTS: dict[str, str] = {
    "production": "https://api.push.apple.com",
    "sandbox": "https://api.sandbox.push.apple.com",
}

#: Keep a provider token this long: under Apple's hour, over its 20-minute minimum.
TOKEN_LIFETIME = 50 * 60.0

#: Names ``apns-id`` values: one stable UUID per delivery and device token.
APNS_ID_NAMESPACE = uuid.UUID("6f3d0a52-5b0e-4e43-9a55-2f1f3c7d9b1e")

RECIPIENT_REASONS = frozenset(
    {"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered", "ExpiredToken"}
)
#: The provider token itself was refused: mint a new one before the next send.
TOKEN_REASONS = frozenset(
    {
        "InvalidProviderToken",
        "ExpiredProviderToken",
        "MissingProviderToken",
        "BadEnvironmentKeyIdInToken",
        "UnrelatedKeyIdInToken",
    }
)
INTEGRATION_REASONS = TOKEN_REASONS | frozenset(
    {
        "TopicDisallowed",
        "BadTopic",
        "MissingTopic",
        "BadCertificate",
        "BadCertificateEnvironment",
        "Forbidden",
        "InvalidPushType",
    }
)
RETRYABLE_REASONS = frozenset(
    {
        "TooManyRequests",
        "TooManyProviderTokenUpdates",
        "IdleTimeout",
        "InternalServerError",
        "ServiceUnavailable",
        "Shutdown",
    }
)
STATUS_TABLE = {410: RecipientError}

PushType = Literal["alert", "background", "voip", "liveactivity", "complication", "fileprovider"]


class ApnsCredentials(Credentials):
    #: The 10-character Team ID of the developer account (the JWT ``iss``).
    team_id: str
    #: The 10-character Key ID of the signing key (the JWT ``kid``).
    key_id: str
    #: The contents of the ``AuthKey_<key id>.p8`` file.
    private_key: SecretStr

    @field_validator("private_key")
    @classmethod
    def _is_p256_key(cls, value: SecretStr) -> SecretStr:
        key = load_private_key(value)
        if not (isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"):
            raise ValueError("private_key must be the PEM P-256 key of the .p8 file")
        return value


class ApnsSettings(Settings):
    #: The app's bundle id (``apns-topic``); VoIP pushes use ``<bundle id>.voip``.
    topic: str
    #: ``sandbox`` for development builds (``api.sandbox.push.apple.com``).
    environment: Literal["production", "sandbox"] = "production"
    #: ``apns-push-type`` for messages with a title or body; others go as ``background``.
    push_type: PushType = "alert"
    #: ``apns-priority`` of alert pushes: 10 at once, 5 power-considerate, 1 lowest.
    priority: Literal[10, 5, 1] = 10


class ApnsProvider(Provider[ApnsCredentials, ApnsSettings]):
    """Sends through APNs, one HTTP/2 request per device token, concurrently."""

    name = "apns"
    display_name = "Apple Push Notification service"
    channel = ChannelType.PUSH
    credentials_model = ApnsCredentials
    settings_model = ApnsSettings
    returns_message_id = True
    requires_http2 = True

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._tokens = TokenCache(clock)

    async def send(
        self,
        message: Message,
        credentials: ApnsCredentials,
        settings: ApnsSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        async def send_one(token: str) -> SendResult:
            return await self._send_to_token(message, token, credentials, settings, client)

        return await send_to_each_token(self.name, message.to.device_tokens, send_one)

    async def _send_to_token(
        self,
        message: Message,
        token: str,
        credentials: ApnsCredentials,
        settings: ApnsSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        key = _credentials_key(credentials)
        provider_token = await self._tokens.get(key, lambda: self._mint(credentials))
        apns_id = str(uuid.uuid5(APNS_ID_NAMESPACE, f"{message.delivery_id}/{token}"))
        response = await send_request(
            self.name,
            client,
            "POST",
            f"{HOSTS[settings.environment]}/3/device/{quote(token, safe='')}",
            headers={
                "authorization": f"bearer {provider_token}",
                "apns-id": apns_id,
                **build_headers(message, settings),
            },
            json=build_payload(message),
        )
        if response.is_success:
            return SendResult(
                provider_message_id=response.headers.get("apns-id") or apns_id,
                status_code=response.status_code,
            )
        error = self._classify(response)
        if error.provider_code in TOKEN_REASONS:
            self._tokens.drop(key, provider_token)
        raise error

    def _classify(self, response: httpx.Response) -> ProviderError:
        raw_reason = json_body(response).get("reason")
        reason = raw_reason if isinstance(raw_reason, str) and raw_reason else None
        status = response.status_code
        text = f"HTTP {status} {reason or ''}".strip()
        if reason in RECIPIENT_REASONS:
            return RecipientError(self.name, text, status_code=status, provider_code=reason)
        if reason in INTEGRATION_REASONS:
            return IntegrationError(self.name, text, status_code=status, provider_code=reason)
        if reason in RETRYABLE_REASONS:
            return RetryableError(
                self.name,
                text,
                status_code=status,
                provider_code=reason,
                retry_after=retry_after_header(response),
            )
        return classify_status(
            self.name, response, table=STATUS_TABLE, message=text, provider_code=reason
        )

    async def _mint(self, credentials: ApnsCredentials) -> CachedToken:
        now = int(self._clock())
        value = sign_jwt(
            self.name,
            {"iss": credentials.team_id, "iat": now},
            credentials.private_key,
            algorithm="ES256",
            headers={"kid": credentials.key_id},
        )
        return CachedToken(value=value, expires_at=now + TOKEN_LIFETIME)


def _has_alert(message: Message) -> bool:
    return bool(message.title or message.body)


def build_headers(message: Message, settings: ApnsSettings) -> dict[str, str]:
    """``apns-topic``, ``apns-push-type`` and ``apns-priority``, plus options' ``apns-*`` headers.

    A message without title or body is a background push, which Apple requires at priority 5.
    """
    headers = {"apns-topic": settings.topic}
    if _has_alert(message):
        headers["apns-push-type"] = settings.push_type
        headers["apns-priority"] = str(settings.priority)
    else:
        headers["apns-push-type"] = "background"
        headers["apns-priority"] = "5"
    for name in ("apns-push-type", "apns-priority", "apns-collapse-id", "apns-expiration"):
        value = message.options.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool):
            headers[name] = str(value)
    return headers


def build_payload(message: Message) -> dict[str, Any]:
    """The APNs JSON payload: ``aps`` plus the message data as custom top-level keys."""
    aps: dict[str, Any] = {}
    alert: dict[str, str] = {}
    if message.title:
        alert["title"] = message.title
    if message.body:
        alert["body"] = message.body
    if alert:
        aps["alert"] = alert
    else:
        aps["content-available"] = 1
    extra_aps = message.options.get("aps")
    if isinstance(extra_aps, dict):
        aps.update(extra_aps)
    payload: dict[str, Any] = {str(key): value for key, value in message.data.items()}
    payload["aps"] = aps
    return payload


def _credentials_key(credentials: ApnsCredentials) -> str:
    return fingerprint(
        credentials.team_id, credentials.key_id, credentials.private_key.get_secret_value()
    )

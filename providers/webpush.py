"""Web Push to browsers: RFC 8030 (delivery), RFC 8291 (payload encryption), RFC 8292 (VAPID).

A provider on the ``push`` channel, not a channel of its own: a browser's push subscription is
what a device token is to FCM or APNs, an address of one installation, and subscribers already
keep their push addresses as device tokens. A subscription is stored as its JSON serialization
(what ``PushSubscription.toJSON()`` gives in the browser)::

    {"endpoint": "https://push.example.net/...",
     "keys": {"p256dh": "<base64url>", "auth": "<base64url>"}}

One ``POST <endpoint>`` per subscription, concurrently (:mod:`providers.push_fanout`), with:

* the payload (a JSON document ``{"title", "body", "data", ...}`` for the service worker's
  ``push`` event) encrypted as RFC 8291 ``aes128gcm`` for the subscription's ``p256dh`` key and
  ``auth`` secret, by the ``http_ece`` library (``Content-Encoding: aes128gcm``);
* ``Authorization: vapid t=<JWT>, k=<public key>``: an ES256 JWT whose ``aud`` is the endpoint's
  origin, ``exp`` at most 24 hours ahead and ``sub`` the operator's ``mailto:`` or ``https:``
  contact (RFC 8292 §2), signed with the integration's P-256 key through
  :func:`providers.jwt_auth.sign_jwt`, the signer APNs already uses (so ``py-vapid`` is not
  needed); one token is kept per push service origin for 12 hours;
* ``TTL`` (seconds the push service keeps an undelivered message), and ``Urgency`` and
  ``Topic`` when set.

A 201 accepts the message; its ``Location`` (the push message resource, RFC 8030 §5) is the
message id. 404 and 410 mean the subscription expired or was withdrawn: an
:class:`~providers.errors.ExpiredTokenError` (a recipient error), which the dispatcher answers
by removing the subscription from the subscriber's device tokens. 413 is a payload the
service refuses; 401/403 a VAPID key or token the service does not accept (an integration
error); 429 and 5xx are retried after ``Retry-After``.

The endpoint is chosen by the subscriber's browser and stored by the tenant, so it is a
tenant-supplied destination: it must be ``https``, the dispatcher's guarded client refuses it
at connect time when it resolves to a private address, and such a refusal fails this
subscription as a recipient error (it is the subscriber's address, not the integration's).
Endpoints with a path or query show in errors and logs as their origin only: the path is the
subscription's capability.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from typing import Any, Literal

import http_ece
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import Field, SecretStr, field_validator

from providers.base import ChannelType, Credentials, Message, Provider, SendResult, Settings
from providers.errors import ExpiredTokenError, IntegrationError, ProviderError, RecipientError
from providers.http import (
    DestinationRefusedError,
    classify_status,
    error_detail,
    send_request,
)
from providers.jwt_auth import CachedToken, Clock, TokenCache, fingerprint, sign_jwt
from providers.push_fanout import send_to_each_token

#: RFC 8292 §2: ``exp`` MUST NOT be more than 24 hours from the time of the request.
TOKEN_LIFETIME = 12 * 3600
#: Mint a new token this long before the kept one expires.
TOKEN_REFRESH_MARGIN = 3600.0

#: RFC 8030 §7.2: a push service must accept payloads of at least 4096 octets; the encrypted
#: body adds a 86-octet header (16 salt, 4 record size, 1 key id length, 65 key id), a 16-octet
#: tag and the 1-octet padding delimiter, so 3993 octets of plaintext always fit.
MAX_PAYLOAD = 4096 - 86 - 16 - 1

#: RFC 8030 §5.4: a Topic is at most 32 characters of the URL- and filename-safe base64 alphabet.
TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

#: RFC 8030 §5.3 values of the ``Urgency`` header.
Urgency = Literal["very-low", "low", "normal", "high"]

#: Statuses of the push service with a meaning of their own (RFC 8030 §6.2, §7.2, §8.3).
STATUS_ERRORS = {404: ExpiredTokenError, 410: ExpiredTokenError, 413: RecipientError}


def _b64url_decode(value: str) -> bytes:
    """Decode unpadded (or padded) base64url, as the browser's ``toJSON()`` writes it."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _b64url(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")


def load_vapid_key(private_key: SecretStr) -> ec.EllipticCurvePrivateKey | None:
    """The P-256 key of a PEM text, or of the base64url 32-octet private value that VAPID key
    generators print; ``None`` when it is neither."""
    text = private_key.get_secret_value().replace("\\n", "\n").strip()
    key: object = None
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError):
            return None
    else:
        try:
            raw = _b64url_decode(text)
        except (ValueError, binascii.Error):
            return None
        if len(raw) != 32:
            return None
        try:
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        except ValueError:
            return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    return None


class WebPushCredentials(Credentials):
    #: The VAPID application server key: PEM (``-----BEGIN PRIVATE KEY-----``) or the base64url
    #: private value; its public half is the ``applicationServerKey`` browsers subscribed with.
    private_key: SecretStr

    @field_validator("private_key")
    @classmethod
    def _is_p256_key(cls, value: SecretStr) -> SecretStr:
        if load_vapid_key(value) is None:
            raise ValueError(
                "private_key must be a P-256 (prime256v1) private key, PEM or base64url"
            )
        return value


class WebPushSettings(Settings):
    #: RFC 8292 ``sub``: a contact for the push service's operator, ``mailto:`` or ``https:``.
    subject: str
    #: Seconds the push service keeps a message it could not deliver yet (``TTL``); a message's
    #: ``options.ttl`` replaces it.
    ttl: int = Field(default=86_400, ge=0, le=2_419_200)
    #: ``Urgency`` of every message unless its ``options.urgency`` says otherwise.
    urgency: Urgency | None = None

    @field_validator("subject")
    @classmethod
    def _is_contact(cls, value: str) -> str:
        if not (value.startswith("mailto:") and "@" in value) and not value.startswith("https://"):
            raise ValueError("subject must be a mailto: address or an https: URL")
        return value


class Subscription:
    """One parsed push subscription (holds the subscriber's keys: no repr)."""

    __slots__ = ("auth", "endpoint", "p256dh")

    def __init__(self, endpoint: str, p256dh: bytes, auth: bytes) -> None:
        self.endpoint = endpoint
        self.p256dh = p256dh
        self.auth = auth

    def __repr__(self) -> str:
        return "Subscription(...)"

    @property
    def audience(self) -> str:
        """The endpoint's origin, the VAPID ``aud`` (RFC 8292 §2)."""
        url = httpx.URL(self.endpoint)
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{url.host}{port}"


def parse_subscription(provider: str, token: str) -> Subscription:
    """A device token read as a push subscription, or a :class:`RecipientError` saying what is
    wrong with it (never quoting it: it holds the subscriber's keys)."""
    try:
        document = json.loads(token)
    except ValueError:
        raise RecipientError(provider, "device token is not a push subscription (JSON)") from None
    if not isinstance(document, dict):
        raise RecipientError(provider, "device token is not a push subscription (JSON object)")
    endpoint, keys = document.get("endpoint"), document.get("keys")
    if not isinstance(endpoint, str) or not isinstance(keys, dict):
        raise RecipientError(provider, "push subscription needs endpoint and keys")
    try:
        url = httpx.URL(endpoint)
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or url.scheme != "https" or not url.host:
        raise RecipientError(provider, "push subscription endpoint must be an https URL")
    try:
        p256dh = _b64url_decode(str(keys.get("p256dh") or ""))
        auth = _b64url_decode(str(keys.get("auth") or ""))
    except (ValueError, binascii.Error):
        raise RecipientError(provider, "push subscription keys are not base64url") from None
    # RFC 8291 §3: an uncompressed P-256 point and a 16-octet authentication secret.
    if len(p256dh) != 65 or p256dh[0] != 4 or len(auth) != 16:
        raise RecipientError(provider, "push subscription keys are not a P-256 key and auth secret")
    return Subscription(endpoint, p256dh, auth)


def build_payload(message: Message) -> bytes:
    """The plaintext the service worker receives: title, body, data and ``options.notification``
    (icon, badge, actions... as the Notifications API names them) in one JSON document."""
    document: dict[str, Any] = {}
    if message.title:
        document["title"] = message.title
    if message.body:
        document["body"] = message.body
    if message.data:
        document["data"] = message.data
    extra = message.options.get("notification")
    if isinstance(extra, dict):
        document.update(extra)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class WebPushProvider(Provider[WebPushCredentials, WebPushSettings]):
    """Sends one encrypted, VAPID-signed push message per subscription, concurrently."""

    name = "webpush"
    display_name = "Web Push (VAPID)"
    channel = ChannelType.PUSH
    credentials_model = WebPushCredentials
    settings_model = WebPushSettings
    returns_message_id = True

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._tokens = TokenCache(clock)

    async def send(
        self,
        message: Message,
        credentials: WebPushCredentials,
        settings: WebPushSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        payload = build_payload(message)
        if len(payload) > MAX_PAYLOAD:
            raise RecipientError(
                self.name, f"push payload is {len(payload)} bytes, over {MAX_PAYLOAD}"
            )
        headers = self._message_headers(message, settings)

        async def send_one(token: str) -> SendResult:
            subscription = parse_subscription(self.name, token)
            return await self._send_to(
                subscription,
                payload,
                headers,
                credentials=credentials,
                settings=settings,
                client=client,
            )

        return await send_to_each_token(self.name, message.to.device_tokens, send_one)

    def _message_headers(self, message: Message, settings: WebPushSettings) -> dict[str, str]:
        options = message.options
        ttl = options.get("ttl", settings.ttl)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
            raise RecipientError(self.name, "options.ttl must be a non-negative integer")
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Encoding": "aes128gcm",
            "TTL": str(ttl),
        }
        urgency = options.get("urgency", settings.urgency)
        if urgency is not None:
            if urgency not in Urgency.__args__:  # type: ignore[attr-defined]
                raise RecipientError(
                    self.name, "options.urgency must be very-low, low, normal or high"
                )
            headers["Urgency"] = str(urgency)
        topic = options.get("topic")
        if topic is not None:
            if not isinstance(topic, str) or not TOPIC.match(topic):
                raise RecipientError(
                    self.name, "options.topic must be 1 to 32 base64url characters"
                )
            headers["Topic"] = topic
        return headers

    async def _send_to(
        self,
        subscription: Subscription,
        payload: bytes,
        headers: dict[str, str],
        *,
        credentials: WebPushCredentials,
        settings: WebPushSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        key = load_vapid_key(credentials.private_key)
        if key is None:  # the credentials model checked it; kept for type narrowing
            raise IntegrationError(self.name, "private_key is not a P-256 private key")
        public_key = _b64url(
            key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
        token = await self._tokens.get(
            fingerprint(
                credentials.private_key.get_secret_value(), subscription.audience, settings.subject
            ),
            lambda: self._vapid_token(key, subscription.audience, settings.subject),
        )
        body = encrypt(payload, subscription)
        try:
            response = await send_request(
                self.name,
                client,
                "POST",
                subscription.endpoint,
                headers={**headers, "Authorization": f"vapid t={token}, k={public_key}"},
                content=body,
            )
        except DestinationRefusedError as exc:
            # The subscriber's endpoint, not the integration's configuration: fail this
            # subscription, as a refused subscriber webhook URL fails its delivery.
            raise RecipientError(self.name, f"push endpoint refused: {exc.host}") from None
        if response.status_code in (200, 201, 202):
            location = response.headers.get("location")
            return SendResult(
                provider_message_id=location or None, status_code=response.status_code
            )
        raise self._classify(response)

    def _classify(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        if status in (404, 410):
            reason = f"HTTP {status}: push subscription expired or unsubscribed"
        else:
            reason = f"HTTP {status}: {error_detail(response)}".strip()
        return classify_status(self.name, response, table=STATUS_ERRORS, message=reason)

    async def _vapid_token(
        self, key: ec.EllipticCurvePrivateKey, audience: str, subject: str
    ) -> CachedToken:
        now = int(self._clock())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        claims = {"aud": audience, "exp": now + TOKEN_LIFETIME, "sub": subject}
        value = sign_jwt(self.name, claims, SecretStr(pem), algorithm="ES256")
        return CachedToken(value=value, expires_at=now + TOKEN_LIFETIME - TOKEN_REFRESH_MARGIN)


def encrypt(payload: bytes, subscription: Subscription) -> bytes:
    """RFC 8291 ``aes128gcm``: a fresh sender key and salt per message, one record."""
    sender_key = ec.generate_private_key(ec.SECP256R1())
    encrypted: bytes = http_ece.encrypt(
        payload,
        private_key=sender_key,
        dh=subscription.p256dh,
        auth_secret=subscription.auth,
        version="aes128gcm",
    )
    return encrypted

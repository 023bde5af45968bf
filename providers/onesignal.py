"""OneSignal push notification (Create message): https://documentation.onesignal.com/reference/push-notification

``POST https://api.onesignal.com/notifications`` with ``Authorization: Key <App API key>`` and
``{"app_id", "target_channel": "push", "contents": {"en": body}, "headings": {"en": title},
"data", "idempotency_key"}``, targeting the recipient's OneSignal subscription ids
(``include_subscription_ids``, from the device tokens) or, without any, the subscriber id as
External ID (``include_aliases: {"external_id": [...]}``).

The 200 answer is ``{"id": <notification id>, "errors": ...}``: an empty ``id`` means nothing was
created, and ``errors`` then says why: ``{"invalid_player_ids": [...]}``, ``{"invalid_aliases":
{...}}`` or ``["All included players are not subscribed"]`` name the recipient. Other refusals are
``{"errors": ["..."]}`` with a 400 (request) or 401/403 (key); 429 carries ``Retry-After``
(https://documentation.onesignal.com/reference/rate-limits).

``idempotency_key`` must be a UUID (v3 or v4) and de-duplicates for 30 days
(https://documentation.onesignal.com/reference/idempotent-notification-requests): it is the
name-based (v3) UUID of :attr:`Message.idempotency_key`, the same for every retry of a delivery.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from pydantic import SecretStr

from providers.base import ChannelType, CheckResult, Credentials, Message, NoSettings
from providers.errors import MAX_DETAIL, IntegrationError, ProviderError, RecipientError
from providers.http import classify_status, json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest

API_URL = "https://api.onesignal.com"
#: Namespace of the v3 UUIDs sent as ``idempotency_key``.
IDEMPOTENCY_NAMESPACE = uuid.UUID("0d9f6a36-54a4-4d1e-8f0e-5b7f1f0c2a91")

#: ``errors`` keys (of a 200 answer) that list targets OneSignal does not know or cannot reach.
RECIPIENT_ERROR_KEYS = ("invalid_player_ids", "invalid_aliases", "invalid_external_user_ids")
#: ``errors`` strings that say the targeted user has no subscribed device.
NOT_SUBSCRIBED = "not subscribed"

#: Body fields the message options may not override: the target, app and idempotency key.
_RESERVED_FIELDS = frozenset(
    {
        "app_id",
        "target_channel",
        "include_subscription_ids",
        "include_aliases",
        "included_segments",
        "excluded_segments",
        "filters",
        "idempotency_key",
        "external_id",
    }
)


class OneSignalCredentials(Credentials):
    #: The App ID (a UUID) from Settings > Keys & IDs.
    app_id: str
    #: The App API key (REST API key) of that app.
    api_key: SecretStr


class OneSignalProvider(HttpProvider[OneSignalCredentials, NoSettings]):
    name = "onesignal"
    display_name = "OneSignal"
    channel = ChannelType.PUSH
    credentials_model = OneSignalCredentials
    settings_model = NoSettings
    returns_message_id = True
    supports_idempotency_key = True

    def build_request(
        self, message: Message, credentials: OneSignalCredentials, settings: NoSettings
    ) -> HttpRequest:
        return HttpRequest(
            "POST",
            f"{API_URL}/notifications",
            headers=_auth_headers(credentials),
            json=build_payload(message, credentials.app_id, _target(self.name, message)),
        )

    def message_id(self, response: httpx.Response) -> str | None:
        notification_id = json_body(response).get("id")
        return notification_id if isinstance(notification_id, str) and notification_id else None

    def rejection(self, response: httpx.Response, request: HttpRequest) -> ProviderError | None:
        """A 2xx without a notification id created nothing; its ``errors`` say why."""
        errors = json_body(response).get("errors")
        if response.is_success:
            return None if self.message_id(response) else self._not_created(response, errors)
        if response.status_code == 400 and _names_recipient(errors):
            return self._not_created(response, errors)
        return self.classify(response)

    def error_code(self, response: httpx.Response) -> ErrorCode:
        return ErrorCode(None, f"HTTP {response.status_code}: {_summary(json_body(response))}")

    def _not_created(self, response: httpx.Response, errors: Any) -> ProviderError:
        summary = _summary({"errors": errors})
        if _names_recipient(errors):
            return RecipientError(
                self.name,
                f"no subscribed device for the recipient ({summary})",
                status_code=response.status_code,
                provider_code=_recipient_code(errors),
            )
        return IntegrationError(
            self.name, f"no notification created ({summary})", status_code=response.status_code
        )

    async def check(
        self,
        credentials: OneSignalCredentials,
        settings: NoSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        """List one message of the app (View messages): reads nothing but proves the key."""
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{API_URL}/notifications",
            headers=_auth_headers(credentials),
            params={"app_id": credentials.app_id, "limit": 1},
        )
        if response.is_success:
            return CheckResult(ok=True, detail="App API key valid for the app")
        return CheckResult(ok=False, detail=str(classify_status(self.name, response)))


def _auth_headers(credentials: OneSignalCredentials) -> dict[str, str]:
    return {"Authorization": f"Key {credentials.api_key.get_secret_value()}"}


def _target(provider: str, message: Message) -> dict[str, Any]:
    tokens = list(dict.fromkeys(token for token in message.to.device_tokens if token))
    if tokens:
        return {"include_subscription_ids": tokens}
    if message.to.subscriber_id:
        return {"include_aliases": {"external_id": [message.to.subscriber_id]}}
    raise RecipientError(provider, "the recipient has no subscription id nor subscriber id")


def build_payload(message: Message, app_id: str, target: dict[str, Any]) -> dict[str, Any]:
    """The documented Create message body for one recipient."""
    payload: dict[str, Any] = {
        "app_id": app_id,
        "target_channel": "push",
        **target,
        "contents": {"en": message.body},
        "idempotency_key": str(uuid.uuid3(IDEMPOTENCY_NAMESPACE, message.idempotency_key)),
    }
    if message.title:
        payload["headings"] = {"en": message.title}
    if message.data:
        payload["data"] = message.data
    extra = message.options.get("onesignal")
    if isinstance(extra, dict):
        payload.update({k: v for k, v in extra.items() if k not in _RESERVED_FIELDS})
    return payload


def _names_recipient(errors: Any) -> bool:
    if isinstance(errors, dict):
        return any(errors.get(key) for key in RECIPIENT_ERROR_KEYS)
    if isinstance(errors, list):
        return any(isinstance(item, str) and NOT_SUBSCRIBED in item.lower() for item in errors)
    return False


def _recipient_code(errors: Any) -> str | None:
    if isinstance(errors, dict):
        return next((key for key in RECIPIENT_ERROR_KEYS if errors.get(key)), None)
    return "not_subscribed"


def _summary(body: dict[str, Any]) -> str:
    """A short text of ``errors``: the strings of a list, the keys of an object."""
    errors = body.get("errors")
    if isinstance(errors, list):
        text = "; ".join(str(item) for item in errors if item)
    elif isinstance(errors, dict):
        text = ", ".join(sorted(str(key) for key in errors))
    else:
        text = ""
    return text[:MAX_DETAIL] or "no error detail"

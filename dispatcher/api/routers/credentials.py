"""``/v1/subscribers/{subscriberId}/credentials``: a subscriber's push device tokens and chat
webhook URL, under Novu's provider ids.

A subscriber here has one address per channel (``channels.push.device_tokens``,
``channels.chat.webhook_url``), which every integration of the channel uses, so Novu's provider
id chooses the channel: a push provider (``fcm``, ``apns``, ``expo``, ``one-signal``, ...)
the device tokens, a chat provider (``slack``, ``discord``, ``msteams``, ``mattermost``,
``chat-webhook``, ...) the webhook URL; the provider is kept beside them under this project's
name (:data:`OUR_PROVIDERS`: ``one-signal`` is ``onesignal``, ``msteams`` ``teams``, ``slack``
``slack_webhook``), or Novu's id for a provider this project does not have. ``PUT`` replaces
the channel's address, ``PATCH`` adds device tokens to the ones stored, ``DELETE`` removes the
channel's address when it was set for that provider. Novu's ``integrationIdentifier`` is
ignored. A webhook URL is checked when it is used, by the URL guard, like every tenant URL.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import Field

from dispatcher.api.errors import UnprocessableError
from dispatcher.api.rate_limit import CallerDep
from dispatcher.api.routers.subscribers import (
    SubscriberAnswer,
    SubscriberIdPath,
    find_subscriber,
    render,
)
from dispatcher.api.routing import NOT_FOUND, resource_router
from dispatcher.api.schemas import Envelope, WireModel, envelope
from dispatcher.runtime.resources import database
from dispatcher.validation import Url
from models import ChannelType, Subscriber

router: APIRouter = resource_router(prefix="/v1/subscribers", tag="Subscribers")

#: Novu's push provider ids; every other id the SDKs send is a chat provider.
PUSH_PROVIDERS = frozenset(
    {"fcm", "apns", "expo", "one-signal", "pushpad", "push-webhook", "pusher-beams", "appio"}
)
CHAT_PROVIDERS = frozenset(
    {
        "slack", "discord", "msteams", "webex-messaging", "mattermost", "ryver", "zulip",
        "grafana-on-call", "getstream", "rocket-chat", "whatsapp-business", "line",
        "chat-webhook", "novu-slack", "telegram", "sendblue", "novu-web-chat",
    }
)  # fmt: skip
#: Novu's provider ids whose provider this project has under another name (or the same).
OUR_PROVIDERS = {
    "fcm": "fcm", "apns": "apns", "expo": "expo", "one-signal": "onesignal",
    "slack": "slack_webhook", "discord": "discord", "msteams": "teams",
    "mattermost": "mattermost", "telegram": "telegram",
}  # fmt: skip
MAX_DEVICE_TOKENS = 100


class ChannelCredentials(WireModel):
    webhook_url: Url | None = None
    channel: str | None = None
    device_tokens: list[Annotated[str, Field(min_length=1, max_length=4096)]] | None = Field(
        default=None, max_length=MAX_DEVICE_TOKENS
    )


class UpdateCredentialsRequest(WireModel):
    provider_id: str
    credentials: ChannelCredentials
    integration_identifier: str | None = None


def channel_of(provider_id: str, field: str = "providerId") -> ChannelType:
    if provider_id in PUSH_PROVIDERS:
        return ChannelType.PUSH
    if provider_id in CHAT_PROVIDERS:
        return ChannelType.CHAT
    raise UnprocessableError({field: ["not a chat or push provider id"]})


def our_provider(provider_id: str) -> str:
    return OUR_PROVIDERS.get(provider_id, provider_id)


def _address(
    channel: ChannelType, body: UpdateCredentialsRequest, stored: dict[str, Any]
) -> dict[str, Any]:
    given = body.credentials
    if channel is ChannelType.PUSH:
        if not given.device_tokens:
            raise UnprocessableError(
                {"credentials.deviceTokens": ["push credentials need a token"]}
            )
        tokens = list(dict.fromkeys([*stored.get("device_tokens", []), *given.device_tokens]))
        if len(tokens) > MAX_DEVICE_TOKENS:
            raise UnprocessableError(
                {"credentials.deviceTokens": [f"at most {MAX_DEVICE_TOKENS} device tokens"]}
            )
        return {"provider": our_provider(body.provider_id), "device_tokens": tokens}
    if not given.webhook_url:
        raise UnprocessableError({"credentials.webhookUrl": ["chat credentials need a URL"]})
    address: dict[str, Any] = {
        "provider": our_provider(body.provider_id),
        "webhook_url": given.webhook_url,
    }
    if given.channel:
        address["chat_id"] = given.channel
    return address


def _set(
    organisation_id: Any, subscriber_id: str, body: UpdateCredentialsRequest, *, append: bool
) -> dict[str, Any]:
    channel = channel_of(body.provider_id)
    with database().transaction() as session:
        subscriber = find_subscriber(session, organisation_id, subscriber_id)
        channels = dict(subscriber.channels or {})
        stored = channels.get(channel.value) or {}
        channels[channel.value] = _address(channel, body, stored if append else {})
        subscriber.channels = channels
        session.flush()
        return envelope(render(subscriber))


@router.put(
    "/{subscriberId}/credentials", response_model=Envelope[SubscriberAnswer], responses=NOT_FOUND
)
def update_credentials(
    body: UpdateCredentialsRequest, caller: CallerDep, subscriber_id: SubscriberIdPath
) -> dict[str, Any]:
    """Replace the channel's address (the device tokens or the webhook URL)."""
    return _set(caller.organisation_id, subscriber_id, body, append=False)


@router.patch(
    "/{subscriberId}/credentials", response_model=Envelope[SubscriberAnswer], responses=NOT_FOUND
)
def append_credentials(
    body: UpdateCredentialsRequest, caller: CallerDep, subscriber_id: SubscriberIdPath
) -> dict[str, Any]:
    """Add device tokens to the stored ones (a chat URL is replaced)."""
    return _set(caller.organisation_id, subscriber_id, body, append=True)


@router.delete("/{subscriberId}/credentials/{providerId}", status_code=204, responses=NOT_FOUND)
def delete_credentials(
    caller: CallerDep,
    subscriber_id: SubscriberIdPath,
    provider_id: Annotated[str, Path(alias="providerId")],
) -> Response:
    """Remove the channel's address set for this provider (nothing when another provider's)."""
    channel = channel_of(provider_id)
    with database().transaction() as session:
        subscriber: Subscriber = find_subscriber(session, caller.organisation_id, subscriber_id)
        channels = dict(subscriber.channels or {})
        ours = our_provider(provider_id)
        if (channels.get(channel.value) or {}).get("provider", ours) == ours:
            channels.pop(channel.value, None)
            subscriber.channels = channels
    return Response(status_code=204)

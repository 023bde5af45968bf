"""``/v1/subscribers/{subscriberId}/credentials``: a subscriber's own address on a chat or push
provider, under Novu's provider ids.

A subscriber here has one address per channel (``channels.push.device_tokens``,
``channels.chat.webhook_url`` and ``channels.chat.chat_id``), which every integration of the
channel uses (the sending path builds the :class:`~providers.base.Recipient` from it), so Novu's
provider id chooses the channel and which of Novu's fields carries the address
(:data:`ADDRESSES`, one entry per chat or push provider here):

* ``deviceTokens``: device tokens for the push providers, and what a subscriber subscribes to
  elsewhere too: Pushover user keys, ntfy topics, Web Push subscriptions (their JSON);
* ``webhookUrl``: the subscriber's own incoming webhook (Discord, Google Chat, Slack webhooks,
  Teams, Teams Workflows, Mattermost) or Gotify message URL;
* ``channel``: a chat id on the integration's server (a Slack or Mattermost channel, a Telegram
  chat, a Zulip ``channel>topic`` or ``@user``, a Rocket.Chat room, a LINE user, a Matrix room).

Sending the wrong kind (a ``webhookUrl`` for Matrix, ``deviceTokens`` for Slack) is a 422 naming
the field, never a stored address no integration can use. Novu's ``slack`` is two providers here:
its ``webhookUrl`` (Novu's incoming-webhook flow) is for ``slack_webhook``, its ``channel`` for the
``slack`` bot. Novu ids of providers this project does not have keep Novu's meaning (push: device
tokens, chat: a webhook URL and an optional channel) and are stored under Novu's id.

The provider is kept beside the address under this project's name (``one-signal`` is
``onesignal``, ``msteams`` ``teams``, ``rocket-chat`` ``rocket_chat``); this project's own names
are accepted too. ``PUT`` replaces the channel's address, ``PATCH`` adds device tokens to the ones
stored (a chat address is replaced), ``DELETE`` removes the channel's address when it was set for
that provider. Novu's ``integrationIdentifier`` and its Grafana On-Call fields are ignored. A
webhook URL must be ``http(s)`` here and is checked when it is used, by the URL guard (and the
provider's own host and path rules), like every tenant URL.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import Field

from dispatcher.api.errors import UnprocessableError
from dispatcher.api.novu_providers import BY_NAME
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


class Kind(enum.StrEnum):
    """Novu's credential field that carries a subscriber's address."""

    TOKENS = "deviceTokens"
    WEBHOOK = "webhookUrl"
    CHAT_ID = "channel"


#: How each chat or push provider here addresses a subscriber: the fields it takes.
ADDRESSES: Mapping[str, frozenset[Kind]] = {
    **dict.fromkeys(
        ("apns", "expo", "fcm", "ntfy", "onesignal", "pushover", "webpush"),
        frozenset({Kind.TOKENS}),
    ),
    **dict.fromkeys(
        ("discord", "google_chat", "gotify", "slack_webhook", "teams", "teams_workflows"),
        frozenset({Kind.WEBHOOK}),
    ),
    # The subscriber's own webhook, and a channel override on it: either or both.
    "mattermost": frozenset({Kind.WEBHOOK, Kind.CHAT_ID}),
    **dict.fromkeys(
        ("line", "matrix", "rocket_chat", "slack", "telegram", "zulip"), frozenset({Kind.CHAT_ID})
    ),
}
#: Chat providers that send to the subscriber's phone number (``phone`` on the subscriber):
#: they have no channel address of their own.
ADDRESSED_BY_PHONE = frozenset({"twilio_whatsapp", "whatsapp_business"})
#: What each provider's ``channel`` is, for the error when it is missing.
CHAT_IDS = {
    "line": "a LINE user, group or room id",
    "matrix": "a Matrix room id",
    "mattermost": "a Mattermost channel",
    "rocket_chat": "a Rocket.Chat channel, @user or room id",
    "slack": "a Slack channel id",
    "telegram": "a Telegram chat id",
    "zulip": "a Zulip channel or @user",
}
#: Novu's push provider ids this project has no provider for (stored under Novu's id).
NOVU_PUSH_ONLY = frozenset({"pushpad", "push-webhook", "pusher-beams", "appio"})
#: Novu's chat provider ids this project has no provider for.
NOVU_CHAT_ONLY = frozenset(
    {
        "webex-messaging", "ryver", "grafana-on-call", "getstream", "whatsapp-business",
        "chat-webhook", "novu-slack", "sendblue", "novu-web-chat",
    }
)  # fmt: skip
MAX_DEVICE_TOKENS = 100


@dataclass(frozen=True)
class Target:
    """Where a provider id's address goes: the channel, and the provider here per field given."""

    channel: ChannelType
    #: Field -> the provider name stored beside the address when that field is given.
    fields: Mapping[Kind, str]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.fields.values())


def _own(name: str) -> Target:
    kinds = ADDRESSES[name]
    channel = ChannelType.PUSH if Kind.TOKENS in kinds else ChannelType.CHAT
    # In Kind's order, so that the field a missing address is reported under is always the same.
    return Target(channel, {kind: name for kind in Kind if kind in kinds})


def _targets() -> dict[str, Target]:
    targets: dict[str, Target] = {}
    for name in ADDRESSES:
        targets[name] = _own(name)
        provider = BY_NAME.get(name)
        if provider is not None:
            targets[provider.novu_id] = targets[name]
    # Novu's Slack posts to the subscriber's incoming webhook; its channel is for the bot here.
    targets["slack"] = Target(
        ChannelType.CHAT, {Kind.WEBHOOK: "slack_webhook", Kind.CHAT_ID: "slack"}
    )
    for novu_id in NOVU_PUSH_ONLY:
        targets[novu_id] = Target(ChannelType.PUSH, {Kind.TOKENS: novu_id})
    for novu_id in NOVU_CHAT_ONLY:
        targets[novu_id] = Target(ChannelType.CHAT, {Kind.WEBHOOK: novu_id, Kind.CHAT_ID: novu_id})
    return targets


#: Every provider id this endpoint takes: Novu's ids and this project's names.
TARGETS: Mapping[str, Target] = _targets()


class ChannelCredentials(WireModel):
    webhook_url: Url | None = None
    channel: str | None = Field(default=None, min_length=1, max_length=512)
    device_tokens: list[Annotated[str, Field(min_length=1, max_length=4096)]] | None = Field(
        default=None, max_length=MAX_DEVICE_TOKENS
    )


class UpdateCredentialsRequest(WireModel):
    provider_id: str
    credentials: ChannelCredentials
    integration_identifier: str | None = None


def target_of(provider_id: str) -> Target:
    target = TARGETS.get(provider_id)
    if target is None:
        by_phone = provider_id in ADDRESSED_BY_PHONE or any(
            BY_NAME[name].novu_id == provider_id for name in ADDRESSED_BY_PHONE if name in BY_NAME
        )
        if by_phone:
            raise UnprocessableError(
                {"providerId": [f"{provider_id!r} sends to the subscriber's phone: set phone"]}
            )
        raise UnprocessableError({"providerId": ["not a chat or push provider id"]})
    return target


#: What each field is, in the errors.
WHAT = {
    Kind.TOKENS: "device tokens",
    Kind.WEBHOOK: "a webhook URL",
    Kind.CHAT_ID: "a chat id (channel)",
}


def _given(credentials: ChannelCredentials) -> dict[Kind, Any]:
    sent = {
        Kind.TOKENS: credentials.device_tokens,
        Kind.WEBHOOK: credentials.webhook_url,
        Kind.CHAT_ID: credentials.channel,
    }
    return {kind: value for kind, value in sent.items() if value}


def _checked(provider_id: str, target: Target, given: dict[Kind, Any]) -> None:
    """422 naming the field for a kind of address the provider does not take, or none given."""
    wrong = {
        f"credentials.{kind.value}": [
            f"{provider_id!r} takes "
            + " or ".join(WHAT[taken] for taken in target.fields)
            + f", not {WHAT[kind]}"
        ]
        for kind in given
        if kind not in target.fields
    }
    if wrong:
        raise UnprocessableError(wrong)
    if not given:
        kind = next(iter(target.fields))
        what = CHAT_IDS.get(target.fields[kind], WHAT[kind]) if kind is Kind.CHAT_ID else None
        message = {
            Kind.TOKENS: "push credentials need a token",
            Kind.WEBHOOK: "chat credentials need a URL",
            Kind.CHAT_ID: f"chat credentials need the subscriber's chat id: {what}",
        }[kind]
        raise UnprocessableError({f"credentials.{kind.value}": [message]})


def _address(
    target: Target, body: UpdateCredentialsRequest, stored: dict[str, Any]
) -> dict[str, Any]:
    given = _given(body.credentials)
    _checked(body.provider_id, target, given)
    if target.channel is ChannelType.PUSH:
        tokens = list(dict.fromkeys([*stored.get("device_tokens", []), *given[Kind.TOKENS]]))
        if len(tokens) > MAX_DEVICE_TOKENS:
            raise UnprocessableError(
                {"credentials.deviceTokens": [f"at most {MAX_DEVICE_TOKENS} device tokens"]}
            )
        return {"provider": target.fields[Kind.TOKENS], "device_tokens": tokens}
    # The bot's name when a chat id is given (Slack: the chat id is the bot's, the URL the
    # webhook's; both stay, for the integrations of either).
    kind = Kind.CHAT_ID if Kind.CHAT_ID in given else Kind.WEBHOOK
    address: dict[str, Any] = {"provider": target.fields[kind]}
    if Kind.WEBHOOK in given:
        address["webhook_url"] = given[Kind.WEBHOOK]
    if Kind.CHAT_ID in given:
        address["chat_id"] = given[Kind.CHAT_ID]
    return address


def _set(
    organisation_id: Any, subscriber_id: str, body: UpdateCredentialsRequest, *, append: bool
) -> dict[str, Any]:
    target = target_of(body.provider_id)
    with database().transaction() as session:
        subscriber = find_subscriber(session, organisation_id, subscriber_id)
        channels = dict(subscriber.channels or {})
        stored = channels.get(target.channel.value) or {}
        channels[target.channel.value] = _address(target, body, stored if append else {})
        subscriber.channels = channels
        session.flush()
        return envelope(render(subscriber))


@router.put(
    "/{subscriberId}/credentials", response_model=Envelope[SubscriberAnswer], responses=NOT_FOUND
)
def update_credentials(
    body: UpdateCredentialsRequest, caller: CallerDep, subscriber_id: SubscriberIdPath
) -> dict[str, Any]:
    """Replace the channel's address (the device tokens, or the webhook URL and chat id)."""
    return _set(caller.organisation_id, subscriber_id, body, append=False)


@router.patch(
    "/{subscriberId}/credentials", response_model=Envelope[SubscriberAnswer], responses=NOT_FOUND
)
def append_credentials(
    body: UpdateCredentialsRequest, caller: CallerDep, subscriber_id: SubscriberIdPath
) -> dict[str, Any]:
    """Add device tokens to the stored ones (a chat address is replaced)."""
    return _set(caller.organisation_id, subscriber_id, body, append=True)


@router.delete("/{subscriberId}/credentials/{providerId}", status_code=204, responses=NOT_FOUND)
def delete_credentials(
    caller: CallerDep,
    subscriber_id: SubscriberIdPath,
    provider_id: Annotated[str, Path(alias="providerId")],
) -> Response:
    """Remove the channel's address set for this provider (nothing when another provider's)."""
    target = target_of(provider_id)
    with database().transaction() as session:
        subscriber: Subscriber = find_subscriber(session, caller.organisation_id, subscriber_id)
        channels = dict(subscriber.channels or {})
        stored = channels.get(target.channel.value) or {}
        if stored.get("provider", next(iter(target.names))) in target.names:
            channels.pop(target.channel.value, None)
            subscriber.channels = channels
    return Response(status_code=204)

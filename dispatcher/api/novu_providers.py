"""This project's provider names and credential fields in Novu's spelling, both ways.

Novu names a provider by its own id (``nodemailer`` for SMTP, ``sendinblue`` for Brevo,
``nexmo`` for Vonage ...); where Novu has no such provider (a Google Chat or Slack incoming
webhook, the development fakes) the id is this project's name in Novu's kebab case, which no
Novu provider id uses, so the mapping stays one-to-one.

Novu's SDKs send an integration's credentials as one object of camelCase names (``apiKey``,
``secretKey``, ``from``, ``senderName``, ``baseUrl`` ...) and drop any other key. Each
provider's :class:`NovuProvider` says where each of those lands here: in the encrypted
``credentials`` or in the plain ``settings``. Names a provider does not list are refused with
the field named (never silently dropped: a missing secret would otherwise fail at send time).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from dispatcher.api.errors import UnprocessableError

Part = Literal["credentials", "settings"]


@dataclass(frozen=True)
class NovuProvider:
    #: This project's provider name (the registry's).
    name: str
    #: Novu's provider id.
    novu_id: str
    #: Novu credential name -> (where it goes here, the field's name there).
    fields: Mapping[str, tuple[Part, str]] = field(default_factory=dict)
    #: False when ``novu_id`` is this project's name, which Novu's closed enum of provider ids
    #: (in its activity ``jobs``) does not hold.
    in_novu: bool = True


def _c(name: str) -> tuple[Part, str]:
    return ("credentials", name)


def _s(name: str) -> tuple[Part, str]:
    return ("settings", name)


#: Sender fields every email provider here has.
EMAIL = {"from": _s("from_email"), "senderName": _s("from_name"), "baseUrl": _s("base_url")}
WEBHOOK_CHAT = {"webhookUrl": _c("webhook_url")}

PROVIDERS: tuple[NovuProvider, ...] = (
    NovuProvider(
        "apns",
        "apns",
        # Novu's APNs form: the .p8 key as secretKey, its key id as apiKey, the team id as
        # projectName, the bundle id as applicationId.
        {
            "secretKey": _c("private_key"),
            "apiKey": _c("key_id"),
            "projectName": _c("team_id"),
            "applicationId": _s("topic"),
        },
    ),
    NovuProvider("brevo", "sendinblue", {"apiKey": _c("api_key"), **EMAIL}),
    NovuProvider(
        "clickatell",
        "clickatell",
        {"apiKey": _c("api_key"), "from": _s("from_number"), "baseUrl": _s("base_url")},
    ),
    NovuProvider("discord", "discord", WEBHOOK_CHAT),
    NovuProvider("expo", "expo", {"apiKey": _c("access_token")}),
    NovuProvider("fake", "fake", {"apiKey": _c("api_key")}, in_novu=False),
    NovuProvider(
        "fake_http", "fake-http", {"apiKey": _c("api_key"), "baseUrl": _s("url")}, in_novu=False
    ),
    # serviceAccount is the service account's JSON key file, spread over our fields.
    NovuProvider("fcm", "fcm", {"serviceAccount": _c("*service_account")}),
    NovuProvider("google_chat", "google-chat", WEBHOOK_CHAT, in_novu=False),
    NovuProvider(
        "gotify", "gotify", {"token": _c("app_token"), "baseUrl": _s("base_url")}, in_novu=False
    ),
    NovuProvider("line", "line", {"token": _c("channel_access_token"), "channelId": _s("to")}),
    NovuProvider("infobip_email", "infobip-email", {"apiKey": _c("api_key"), **EMAIL}),
    NovuProvider(
        "infobip_sms",
        "infobip-sms",
        {"apiKey": _c("api_key"), "baseUrl": _s("base_url"), "from": _s("sender")},
    ),
    NovuProvider("mailersend", "mailersend", {"apiKey": _c("api_key"), **EMAIL}),
    NovuProvider(
        "mailgun",
        "mailgun",
        {"apiKey": _c("api_key"), "domain": _s("domain"), "region": _s("region"), **EMAIL},
    ),
    NovuProvider(
        "mailjet", "mailjet", {"apiKey": _c("api_key"), "secretKey": _c("secret_key"), **EMAIL}
    ),
    NovuProvider(
        "matrix",
        "matrix",
        {"token": _c("access_token"), "baseUrl": _s("base_url"), "channelId": _s("room_id")},
        in_novu=False,
    ),
    NovuProvider("mailtrap", "mailtrap", {"apiKey": _c("api_key"), **EMAIL}),
    NovuProvider("mandrill", "mandrill", {"apiKey": _c("api_key"), **EMAIL}),
    NovuProvider("mattermost", "mattermost", WEBHOOK_CHAT),
    NovuProvider(
        "messagebird",
        "messagebird",
        {"accessKey": _c("access_key"), "from": _s("originator"), "baseUrl": _s("base_url")},
    ),
    # Novu's outlook365 is SMTP with a password: not this API, so the id is our own.
    NovuProvider(
        "msgraph",
        "msgraph",
        {
            "tenantId": _c("tenant_id"),
            "clientId": _c("client_id"),
            "secretKey": _c("client_secret"),
            "from": _s("from_email"),
            "senderName": _s("from_name"),
        },
        in_novu=False,
    ),
    NovuProvider(
        "ntfy",
        "ntfy",
        {
            "token": _c("access_token"),
            "user": _c("username"),
            "password": _c("password"),
            "baseUrl": _s("base_url"),
        },
        in_novu=False,
    ),
    NovuProvider(
        "onesignal", "one-signal", {"applicationId": _c("app_id"), "apiKey": _c("api_key")}
    ),
    NovuProvider(
        "plivo",
        "plivo",
        {
            "accountSid": _c("auth_id"),
            "token": _c("auth_token"),
            "from": _s("src"),
            "baseUrl": _s("base_url"),
        },
    ),
    NovuProvider("postmark", "postmark", {"apiKey": _c("server_token"), **EMAIL}),
    NovuProvider("pushover", "pushover", {"token": _c("app_token")}, in_novu=False),
    NovuProvider("resend", "resend", {"apiKey": _c("api_key"), **EMAIL}),
    # Novu's Rocket.Chat takes the same pair: its token and user.
    NovuProvider(
        "rocket_chat",
        "rocket-chat",
        {
            "token": _c("auth_token"),
            "user": _c("user_id"),
            "baseUrl": _s("base_url"),
            "channelId": _s("channel"),
        },
    ),
    NovuProvider(
        "sendgrid", "sendgrid", {"apiKey": _c("api_key"), "region": _s("region"), **EMAIL}
    ),
    NovuProvider(
        "ses",
        "ses",
        {
            "apiKey": _c("access_key_id"),
            "secretKey": _c("secret_access_key"),
            "region": _s("region"),
            **EMAIL,
        },
    ),
    NovuProvider(
        "sinch",
        "sinch",
        {
            "servicePlanId": _c("service_plan_id"),
            "apiToken": _c("api_token"),
            "region": _s("region"),
            "from": _s("sender"),
        },
    ),
    NovuProvider(
        "slack",
        "slack",
        {
            "apiToken": _c("bot_token"),
            "channelId": _s("default_channel"),
            "baseUrl": _s("base_url"),
        },
    ),
    NovuProvider("slack_webhook", "slack-webhook", WEBHOOK_CHAT, in_novu=False),
    NovuProvider(
        "smtp",
        "nodemailer",
        {
            "user": _c("username"),
            "password": _c("password"),
            "host": _s("host"),
            "port": _s("port"),
            "secure": _s("*secure"),
            "from": _s("from_email"),
            "senderName": _s("from_name"),
        },
    ),
    NovuProvider(
        "sns",
        "sns",
        {
            "apiKey": _c("access_key_id"),
            "secretKey": _c("secret_access_key"),
            "region": _s("region"),
        },
    ),
    NovuProvider(
        "sparkpost", "sparkpost", {"apiKey": _c("api_key"), "region": _s("region"), **EMAIL}
    ),
    NovuProvider("teams", "msteams", WEBHOOK_CHAT),
    NovuProvider("teams_workflows", "teams-workflows", WEBHOOK_CHAT, in_novu=False),
    NovuProvider(
        "telegram",
        "telegram",
        {"token": _c("bot_token"), "channelId": _s("default_chat_id"), "baseUrl": _s("base_url")},
    ),
    NovuProvider(
        "telnyx",
        "telnyx",
        {
            "apiKey": _c("api_key"),
            "from": _s("from_number"),
            "messageProfileId": _s("messaging_profile_id"),
            "baseUrl": _s("base_url"),
        },
    ),
    NovuProvider(
        "twilio",
        "twilio",
        {
            "accountSid": _c("account_sid"),
            "token": _c("auth_token"),
            "from": _s("from_number"),
            "baseUrl": _s("base_url"),
        },
    ),
    # Novu has no Twilio WhatsApp provider (its "twilio" is SMS): our name in Novu's case.
    NovuProvider(
        "twilio_whatsapp",
        "twilio-whatsapp",
        {
            "accountSid": _c("account_sid"),
            "token": _c("auth_token"),
            "from": _s("from_number"),
            "baseUrl": _s("base_url"),
        },
        in_novu=False,
    ),
    NovuProvider(
        "vonage",
        "nexmo",
        {
            "apiKey": _c("api_key"),
            "secretKey": _c("api_secret"),
            "from": _s("sender"),
            "baseUrl": _s("base_url"),
        },
    ),
    NovuProvider(
        "webhook",
        "webhook",
        {"secretKey": _c("signing_secret"), "webhookUrl": _s("url")},
        in_novu=False,
    ),
    # Novu has no Web Push provider: our name, the VAPID key as secretKey, its contact as from.
    NovuProvider(
        "webpush", "webpush", {"secretKey": _c("private_key"), "from": _s("subject")}, in_novu=False
    ),
    NovuProvider(
        "whatsapp_business",
        "whatsapp-business",
        {
            "apiToken": _c("access_token"),
            "phoneNumberIdentification": _s("phone_number_id"),
            "baseUrl": _s("base_url"),
        },
    ),
    # Novu's Zulip posts to an incoming-webhook URL; this one is the bot API (a webhookUrl is
    # refused by name): the bot's email as user, its key as apiKey, the site as baseUrl.
    NovuProvider(
        "zulip",
        "zulip",
        {"user": _c("email"), "apiKey": _c("api_key"), "baseUrl": _s("base_url")},
    ),
)

BY_NAME = {provider.name: provider for provider in PROVIDERS}
BY_NOVU_ID = {provider.novu_id: provider for provider in PROVIDERS}

#: The service account JSON's keys this project keeps (the rest, such as ``type``, is dropped).
SERVICE_ACCOUNT_KEYS = ("project_id", "client_email", "private_key", "private_key_id", "token_uri")


def novu_id(name: str) -> str:
    """Novu's id for one of this project's providers (unmapped names travel as they are)."""
    provider = BY_NAME.get(name)
    return provider.novu_id if provider else name


#: The id an activity job names when its provider has none of Novu's (or none yet): Novu's
#: generic provider of the channel.
GENERIC_BY_CHANNEL = {
    "email": "email-webhook",
    "sms": "generic-sms",
    "chat": "chat-webhook",
    "push": "push-webhook",
    "in_app": "novu",
    "webhook": "tool-webhook",
}


def job_provider_id(name: str | None, channel: str) -> str:
    """A provider id Novu's SDKs accept in a job: Novu's own for a provider Novu has, else the
    channel's generic one (the delivery keeps this project's in ``deliveries``)."""
    provider = BY_NAME.get(name or "")
    if provider is not None and provider.in_novu:
        return provider.novu_id
    return GENERIC_BY_CHANNEL[channel]


def from_novu_id(provider_id: str, field_name: str = "providerId") -> NovuProvider:
    """The provider behind a Novu id; this project's own names are accepted too."""
    provider = BY_NOVU_ID.get(provider_id) or BY_NAME.get(provider_id)
    if provider is None:
        known = ", ".join(sorted(BY_NOVU_ID))
        raise UnprocessableError({field_name: [f"unknown provider id; one of {known}"]})
    return provider


@dataclass(frozen=True)
class Split:
    credentials: dict[str, Any]
    settings: dict[str, Any]


def split_credentials(provider: NovuProvider, sent: Mapping[str, Any]) -> Split:
    """Novu's credentials object as this project's credentials and settings (values are never
    put into an error: they may be secrets)."""
    credentials: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    unknown = sorted(
        name for name, value in sent.items() if value is not None and name not in provider.fields
    )
    if unknown:
        errors = {
            f"credentials.{name}": [f"not used by provider {provider.novu_id!r}"]
            for name in unknown
        }
        raise UnprocessableError(errors)
    for name, value in sent.items():
        if value is None:
            continue
        part, target = provider.fields[name]
        if target == "*service_account":
            credentials.update(_service_account(value))
        elif target == "*secure":
            settings["security"] = "ssl" if value in (True, "true") else "starttls"
        else:
            (credentials if part == "credentials" else settings)[target] = value
    return Split(credentials, settings)


def _service_account(value: Any) -> dict[str, Any]:
    try:
        account = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        account = None
    if not isinstance(account, dict):
        raise UnprocessableError(
            {"credentials.serviceAccount": ["must be the service account's JSON key"]}
        )
    return {key: account[key] for key in SERVICE_ACCOUNT_KEYS if key in account}

"""Maps provider names to classes: the built-in catalogue plus an entry-point group.

Third-party packages add providers by declaring, in their own ``pyproject.toml``::

    [project.entry-points."one_dispatcher.providers"]
    acme_sms = "acme_dispatcher.sms:AcmeSmsProvider"

Built-ins are listed here by import path and imported on first use, so a missing optional
dependency of one provider never breaks the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any

from providers.base import ChannelType, Provider

ENTRY_POINT_GROUP = "one_dispatcher.providers"

AnyProvider = Provider[Any, Any]

BUILTIN_PROVIDERS: Mapping[str, str] = MappingProxyType(
    {
        "apns": "providers.apns:ApnsProvider",
        "brevo": "providers.brevo:BrevoProvider",
        "clickatell": "providers.clickatell:ClickatellProvider",
        "discord": "providers.discord:DiscordProvider",
        "expo": "providers.expo:ExpoProvider",
        "fake": "providers.fake:FakeProvider",
        "fake_http": "providers.fake:FakeHttpProvider",
        "fcm": "providers.fcm:FcmProvider",
        "google_chat": "providers.google_chat:GoogleChatProvider",
        "gotify": "providers.gotify:GotifyProvider",
        "infobip_email": "providers.infobip_email:InfobipEmailProvider",
        "infobip_sms": "providers.infobip_sms:InfobipSmsProvider",
        "line": "providers.line:LineProvider",
        "mailersend": "providers.mailersend:MailerSendProvider",
        "mailgun": "providers.mailgun:MailgunProvider",
        "mailjet": "providers.mailjet:MailjetProvider",
        "mailtrap": "providers.mailtrap:MailtrapProvider",
        "mandrill": "providers.mandrill:MandrillProvider",
        "matrix": "providers.matrix:MatrixProvider",
        "mattermost": "providers.mattermost:MattermostProvider",
        "messagebird": "providers.messagebird:MessageBirdProvider",
        "msgraph": "providers.msgraph:MsGraphProvider",
        "ntfy": "providers.ntfy:NtfyProvider",
        "onesignal": "providers.onesignal:OneSignalProvider",
        "plivo": "providers.plivo:PlivoProvider",
        "postmark": "providers.postmark:PostmarkProvider",
        "pushover": "providers.pushover:PushoverProvider",
        "resend": "providers.resend:ResendProvider",
        "rocket_chat": "providers.rocket_chat:RocketChatProvider",
        "sendgrid": "providers.sendgrid:SendGridProvider",
        "ses": "providers.ses:SesProvider",
        "sinch": "providers.sinch:SinchProvider",
        "slack": "providers.slack:SlackProvider",
        "slack_webhook": "providers.slack_webhook:SlackWebhookProvider",
        "smtp": "providers.smtp:SmtpProvider",
        "sns": "providers.sns:SnsProvider",
        "sparkpost": "providers.sparkpost:SparkPostProvider",
        "teams": "providers.teams:TeamsProvider",
        "teams_workflows": "providers.teams_workflows:TeamsWorkflowsProvider",
        "telegram": "providers.telegram:TelegramProvider",
        "telnyx": "providers.telnyx:TelnyxProvider",
        "twilio": "providers.twilio:TwilioProvider",
        "twilio_whatsapp": "providers.twilio_whatsapp:TwilioWhatsAppProvider",
        "vonage": "providers.vonage:VonageProvider",
        "webhook": "providers.webhook:WebhookProvider",
        "webpush": "providers.webpush:WebPushProvider",
        "whatsapp_business": "providers.whatsapp_business:WhatsAppProvider",
        "zulip": "providers.zulip:ZulipProvider",
    }
)


class UnknownProviderError(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown provider {name!r}; known providers: {', '.join(known)}")
        self.name = name


class ProviderRegistry:
    """An explicit registry: built-ins, entry points, and anything registered in code."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self._paths: dict[str, str] = dict(BUILTIN_PROVIDERS)
        self._classes: dict[str, type[AnyProvider]] = {}
        if load_entry_points:
            for entry in entry_points(group=ENTRY_POINT_GROUP):
                self._paths.setdefault(entry.name, entry.value)

    def register(self, provider_class: type[AnyProvider]) -> None:
        self._classes[provider_class.name] = provider_class

    def unregister(self, name: str) -> None:
        """Take out the class registered (or loaded) under ``name``: a name only registered in
        code is then unknown, one of a built-in or an entry point is loaded again from its path
        when next asked for (so code that registers for a while, such as a test, can undo it)."""
        self._classes.pop(name, None)

    def names(self) -> list[str]:
        return sorted(set(self._paths) | set(self._classes))

    def get(self, name: str) -> type[AnyProvider]:
        if name in self._classes:
            return self._classes[name]
        path = self._paths.get(name)
        if path is None:
            raise UnknownProviderError(name, self.names())
        module_name, _, attribute = path.partition(":")
        provider_class: type[AnyProvider] = getattr(importlib.import_module(module_name), attribute)
        if provider_class.name != name:
            raise ValueError(
                f"provider {path} declares name {provider_class.name!r} but is registered as "
                f"{name!r}: make them equal"
            )
        self._classes[name] = provider_class
        return provider_class

    def for_channel(self, channel: ChannelType) -> list[type[AnyProvider]]:
        return [cls for cls in map(self.get, self.names()) if cls.channel == channel]


default_registry = ProviderRegistry()

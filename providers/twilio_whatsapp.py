"""WhatsApp through Twilio's Messages API: https://www.twilio.com/docs/whatsapp/api

The same ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` as Twilio SMS
(:mod:`providers.twilio`, whose request, credentials check and error reading this provider
inherits), with the WhatsApp addresses ``To=whatsapp:+15551234567`` and
``From=whatsapp:<sender>`` (or a Messaging Service with a WhatsApp sender). On the ``chat``
channel to the recipient's phone, like :mod:`providers.whatsapp_business`.

Outside the 24-hour customer service window WhatsApp takes only approved templates, which
Twilio sends as Content templates: the message's ``options.content_sid`` (``HX...``) and
``options.content_variables`` (an object, sent as the JSON ``ContentVariables``) replace
``Body``.

Twilio's WhatsApp error codes (https://www.twilio.com/docs/api/errors, 63001-63049) are read
over the SMS ones: 63016 (free-form message outside the window), 63003 and 63024 (the number
is not a WhatsApp user, or not a valid recipient), 63032 and 63049 (WhatsApp or Meta would
not deliver to this user) are the recipient's; 63007 (no WhatsApp sender for ``From``), 63027
and 63028 (template missing or its variables wrong), 63112 (the Meta business account is
disabled) the integration's; 63018 (the sender's rate limit) is retried.
"""

from __future__ import annotations

import json
import re
from types import MappingProxyType

from providers.base import ChannelType, Message
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.sms_common import CodeTable, recipient_number
from providers.twilio import ERROR_CODES, TwilioProvider, TwilioSettings, build_form

PREFIX = "whatsapp:"

WHATSAPP_CODES: CodeTable = MappingProxyType(
    {
        "63003": (RecipientError, "the number is not reachable on WhatsApp"),
        "63007": (IntegrationError, "no WhatsApp sender for the 'From' address"),
        "63016": (
            RecipientError,
            "free-form message outside the 24-hour window: send a template (options.content_sid)",
        ),
        "63018": (RetryableError, "the WhatsApp sender's rate limit was exceeded"),
        "63024": (RecipientError, "invalid WhatsApp recipient"),
        "63027": (IntegrationError, "the template does not exist for this language"),
        "63028": (IntegrationError, "the template's variables do not match"),
        "63032": (RecipientError, "WhatsApp does not deliver this message to this user"),
        "63049": (RecipientError, "Meta chose not to deliver this marketing message"),
        "63112": (IntegrationError, "the Meta business account is disabled"),
    }
)

_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")


def whatsapp_address(address: str) -> str:
    """``address`` with the ``whatsapp:`` channel prefix Twilio routes by."""
    return address if address.startswith(PREFIX) else f"{PREFIX}{address}"


class TwilioWhatsAppProvider(TwilioProvider):
    name = "twilio_whatsapp"
    display_name = "Twilio WhatsApp"
    channel = ChannelType.CHAT
    twilio_codes = MappingProxyType({**ERROR_CODES, **WHATSAPP_CODES})

    def form(self, message: Message, settings: TwilioSettings) -> dict[str, str]:
        to = whatsapp_address(recipient_number(self.name, message))
        form = build_form(
            message, to, settings, content=content_fields(self.name, message), provider=self.name
        )
        if "From" in form:
            form["From"] = whatsapp_address(form["From"])
        return form


def content_fields(provider: str, message: Message) -> dict[str, str] | None:
    """``ContentSid`` and ``ContentVariables`` from the message's options, or ``None`` for a
    free-form text message."""
    options = message.options
    content_sid = options.get("content_sid")
    if content_sid is None:
        if "content_variables" in options:
            raise RecipientError(provider, "options.content_variables needs options.content_sid")
        return None
    if not isinstance(content_sid, str) or not _CONTENT_SID.match(content_sid):
        raise RecipientError(provider, "options.content_sid must be a Content SID (HX...)")
    fields = {"ContentSid": content_sid}
    variables = options.get("content_variables")
    if variables is not None:
        if not isinstance(variables, dict):
            raise RecipientError(provider, "options.content_variables must be an object")
        fields["ContentVariables"] = json.dumps(
            {str(key): str(value) for key, value in variables.items()}, ensure_ascii=False
        )
    return fields

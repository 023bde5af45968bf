"""Helpers shared by the SMS providers: recipient numbers, message text, and error-code tables.

Every SMS API takes the recipient as an E.164 number (``+`` and up to 15 digits; some want the
digits alone), and every one answers a refusal with its own numeric or string code that a
per-provider table maps to an error class. Those three habits live here once:

* :func:`recipient_number` checks the number before any request, so a malformed one is a
  :class:`~providers.errors.RecipientError` that never reaches the provider, and so a value such
  as ``"+1555<+1666"`` can never fan out to several destinations (Plivo splits ``dst`` on ``<``).
* :func:`message_text` refuses an empty text, which every API rejects anyway.
* :func:`code_error` builds the classified error for a code found in a provider's table.

Messages built here never carry the recipient's number or any request field, only codes and the
provider's own short explanation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import httpx

from providers.base import Message
from providers.errors import MAX_DETAIL, ProviderError, RecipientError
from providers.http import ErrorClass, classify_status

#: E.164 as the dispatcher stores it: ``+``, a non-zero country code digit, 7 to 15 digits.
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

#: Separators people type inside phone numbers; dropped before the E.164 check.
_SEPARATORS = re.compile(r"[\s().\-/]")

#: Characters of the GSM 03.38 default alphabet and its extension table. Text made only of these
#: travels as 7-bit GSM; any other character needs UCS-2 ("unicode") or it is garbled.
GSM_CHARACTERS = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    "\f^{}\\[~]|€"
)

#: A provider's refusal codes: code -> (error class, what it means in a few words).
CodeTable = Mapping[str, tuple[ErrorClass, str]]


def recipient_number(provider: str, message: Message) -> str:
    """The recipient's number in E.164 (``+15551234567``), or :class:`RecipientError`."""
    phone = message.to.phone
    if not phone:
        raise RecipientError(provider, "recipient has no phone number")
    number = _SEPARATORS.sub("", phone)
    if not E164.match(number):
        raise RecipientError(
            provider, "recipient phone number is not in E.164 format (+ and country code)"
        )
    return number


def msisdn(e164: str) -> str:
    """An E.164 number without its ``+``: the form Vonage and MessageBird document."""
    return e164.removeprefix("+")


def message_text(provider: str, message: Message) -> str:
    """The SMS text (``message.body``); an empty one is permanent for this message."""
    if not message.body.strip():
        raise RecipientError(provider, "message has no text to send")
    return message.body


def is_gsm(text: str) -> bool:
    """True when ``text`` fits the GSM 7-bit alphabet (no unicode encoding needed)."""
    return all(character in GSM_CHARACTERS for character in text)


def one_line(text: object, limit: int = MAX_DETAIL) -> str:
    """A provider's explanation as one short line, for an error message."""
    return " ".join(str(text).split())[:limit]


def code_error(
    provider: str,
    table: CodeTable,
    code: str,
    detail: str,
    response: httpx.Response,
) -> ProviderError | None:
    """The classified error for ``code`` when ``table`` knows it, else ``None``.

    A retryable code honours the response's ``Retry-After`` header, as a 429 does.
    """
    entry = table.get(code)
    if entry is None:
        return None
    error_class, meaning = entry
    text = f"{meaning} ({code}: {one_line(detail)})" if detail else f"{meaning} ({code})"
    table_entry = {response.status_code: error_class}
    return classify_status(provider, response, table=table_entry, message=text, provider_code=code)

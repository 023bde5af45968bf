"""What every email provider does the same way: sender settings, the recipient, body parts, files.

Each email API names its fields differently, but they all need a verified sender address with an
optional display name and reply-to, one recipient address, a text part and/or an HTML part, and
attachments as base64 text. Those pieces live here so the provider modules only map them onto
their own request shapes.
"""

from __future__ import annotations

import base64
import re

from pydantic import field_validator

from providers.base import Message, Settings
from providers.errors import RecipientError

#: Characters that force a display name into a quoted string (RFC 5322 ``specials``).
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


class EmailSenderSettings(Settings):
    """The sender every email integration declares; provider settings extend it."""

    #: Must be verified with the provider (a sender signature, a verified domain...).
    from_email: str
    from_name: str | None = None
    reply_to: str | None = None

    @field_validator("from_email")
    @classmethod
    def _looks_like_address(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("from_email must be an email address")
        return value


def recipient_email(provider: str, message: Message) -> str:
    """The recipient's address, or a :class:`RecipientError` before any request is made."""
    address = message.to.email
    if not address:
        raise RecipientError(provider, "recipient has no email address")
    return address


def body_parts(message: Message) -> tuple[str | None, str | None]:
    """``(text, html)``: the text part is sent when there is one or when there is no HTML."""
    text = message.body if message.body or not message.html else None
    return text, message.html or None


def display_address(address: str, name: str | None) -> str:
    """``Name <address>`` for JSON APIs that take one string; the name is quoted when needed.

    Unlike :func:`email.utils.formataddr` the name stays UTF-8: the provider writes the MIME
    header, so it does the RFC 2047 encoding itself.
    """
    name = " ".join((name or "").split())  # no CR/LF can reach a header
    if not name:
        return address
    if _SPECIALS.search(name):
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        name = f'"{escaped}"'
    return f"{name} <{address}>"


def base64_text(content: bytes) -> str:
    """Attachment bytes as the base64 text JSON email APIs expect."""
    return base64.b64encode(content).decode("ascii")


_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def tag_value(text: str) -> str:
    """``text`` as a message tag value: ASCII letters, digits, ``_`` and ``-``; 256 at most.

    Resend's ``tags`` and SES's ``EmailTags`` both allow only these characters.
    """
    return _TAG_UNSAFE.sub("_", text)[:256]

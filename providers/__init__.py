"""Channel providers: one module per third-party API on :mod:`providers.base`."""

from providers.base import (
    Attachment,
    ChannelType,
    CheckResult,
    Credentials,
    Message,
    NoSettings,
    Provider,
    Recipient,
    SendResult,
    Settings,
)
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.registry import ProviderRegistry, UnknownProviderError, default_registry

__all__ = [
    "Attachment",
    "ChannelType",
    "CheckResult",
    "Credentials",
    "IntegrationError",
    "Message",
    "NoSettings",
    "Provider",
    "ProviderError",
    "ProviderRegistry",
    "Recipient",
    "RecipientError",
    "RetryableError",
    "SendResult",
    "Settings",
    "UnknownProviderError",
    "default_registry",
]
